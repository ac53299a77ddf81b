package recommend

import (
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/onair/onair/internal/testenv"
)

func testActors(t *testing.T, now func() time.Time, debounce time.Duration) *stationActors {
	t.Helper()
	m, err := newMetrics(nil)
	if err != nil {
		t.Fatal(err)
	}
	b := newStationActors(slog.New(slog.DiscardHandler), m, now, debounce)
	t.Cleanup(b.close)
	return b
}

// TestAtomicSwitchAtBoundary reads a station's playlist from several
// goroutines while its clock passes 10:00, where daypart "a" hands over to
// "b": every read before the boundary gets all of a's list, every read at
// or after it all of b's, none a partial or missing list, and none needed a
// build on the request path (both were built ahead).
func TestAtomicSwitchAtBoundary(t *testing.T) {
	t.Parallel()
	boundary := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	offset := time.Until(boundary.Add(-400 * time.Millisecond))
	now := func() time.Time { return time.Now().Add(offset) }
	b := testActors(t, now, 0)
	items := randomCatalog(rand.New(rand.NewPCG(1, 2)), 3000)
	snap := NewSnapshot(1, items)
	b.setSnapshot(snap, nil)
	st := &Station{ID: 7, Name: "sw", Timezone: "UTC", Dayparts: []Daypart{
		{Name: "a", Days: everyDay, Start: "00:00", End: "10:00", Rounds: []Round{{Slots: []Slot{{Type: SlotProgram, Filter: Filter{Categories: []string{"news"}}, Count: 3}}}}},
		{Name: "b", Days: everyDay, Start: "10:00", End: "24:00", Rounds: []Round{{Slots: []Slot{{Type: SlotProgram, Filter: Filter{Categories: []string{"music"}}, Count: 3}}}}},
	}}
	if err := st.Prepare(); err != nil {
		t.Fatal(err)
	}
	b.setStation(st)
	wa, _ := st.WindowAt(boundary.Add(-time.Second))
	wb, _ := st.WindowAt(boundary)
	wantA, wantB := ids(Build(snap, st, wa).Entries), ids(Build(snap, st, wb).Entries)
	if len(wantA) == 0 || len(wantB) == 0 || slices.Equal(wantA, wantB) {
		t.Fatalf("test setup: lists a %d, b %d items", len(wantA), len(wantB))
	}

	var before, after atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				at := now()
				if at.After(boundary.Add(400 * time.Millisecond)) {
					return
				}
				pl, _, ok := b.public(7, at)
				switch {
				case !ok || pl == nil:
					errs <- "no playlist at " + at.Format(time.RFC3339Nano)
					return
				case at.Before(boundary) && (pl.Window.Name != "a" || !slices.Equal(ids(pl.Entries), wantA)):
					errs <- "before the boundary got " + pl.Window.Name + " at " + at.Format(time.RFC3339Nano)
					return
				case !at.Before(boundary) && (pl.Window.Name != "b" || !slices.Equal(ids(pl.Entries), wantB)):
					errs <- "at/after the boundary got " + pl.Window.Name + " at " + at.Format(time.RFC3339Nano)
					return
				}
				if at.Before(boundary) {
					before.Add(1)
				} else {
					after.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
	if before.Load() == 0 || after.Load() == 0 {
		t.Fatalf("reads before %d, after %d: the test did not straddle the boundary", before.Load(), after.Load())
	}
	if n := testutil.ToFloat64(b.m.fallback); n != 0 {
		t.Fatalf("%v reads built a list on the request path; both dayparts should have been built ahead", n)
	}
	// The actor rotated at the boundary and built the daypart after b.
	testenv.Wait(t, 5*time.Second, func() bool { return testutil.ToFloat64(b.m.rebuilds.WithLabelValues("boundary")) >= 1 },
		"the actor did not rotate at the boundary")
	b.mu.RLock()
	l := b.actors[7].lists.Load()
	b.mu.RUnlock()
	if l.cur == nil || l.cur.Window.Name != "b" || l.next == nil || !l.next.Window.Start.Equal(l.cur.Window.End) {
		t.Fatalf("after the rotation: cur %v next %v", l.cur != nil, l.next != nil)
	}
	t.Logf("reads: %d before, %d after the boundary", before.Load(), after.Load())
}

// TestCoalescingBurst sends 10 000 catalog changes touching one station as
// fast as they come: they merge into a handful of rebuilds, every change is
// counted as received and either rebuilt or merged, and the last state
// wins.
func TestCoalescingBurst(t *testing.T) {
	t.Parallel()
	b := testActors(t, time.Now, 20*time.Millisecond)
	items := randomCatalog(rand.New(rand.NewPCG(3, 4)), 500)
	b.setSnapshot(NewSnapshot(1, items), nil)
	st := &Station{ID: 9, Name: "co", Timezone: "UTC", Dayparts: []Daypart{
		{Name: "all", Days: everyDay, Start: "00:00", End: "24:00", Rounds: []Round{{Slots: []Slot{{Type: SlotProgram, Count: 5}}}}}}}
	if err := st.Prepare(); err != nil {
		t.Fatal(err)
	}
	b.setStation(st)
	pl, _, _ := b.public(9, time.Now())
	if len(pl.Entries) == 0 {
		t.Fatal("before the burst the playlist is empty")
	}
	top, entries := pl.Entries[0].ItemID, len(pl.Entries)

	// Snapshots are indexed once per 500 changes (a follower indexes one
	// per fetch); every change is delivered on its own.
	const burst = 10_000
	cur := maps.Clone(items)
	snap := b.snap.Load()
	for i := range burst {
		id := uint64(1 + i%len(items))
		it := *cur[id]
		it.Score = float64(i % 17)
		if i == burst-1 {
			id = top
			it = *cur[top]
			it.Status = StatusOffline // the last change takes the top item off
		}
		cur[id] = &it
		if i%500 == 499 {
			snap = NewSnapshot(uint64(i+2), maps.Clone(cur))
		}
		b.setSnapshot(snap, []*Item{&it})
	}
	changes := func() float64 { return testutil.ToFloat64(b.m.changes) }
	rebuilt := func() float64 { return testutil.ToFloat64(b.m.rebuilds.WithLabelValues("change")) }
	merged := func() float64 { return testutil.ToFloat64(b.m.merged) }
	testenv.Wait(t, 10*time.Second, func() bool { return rebuilt()+merged() == burst },
		"rebuilds %v + merged %v never reached the %d changes", rebuilt(), merged(), burst)
	if changes() != burst {
		t.Fatalf("changes received %v, want %d", changes(), burst)
	}
	if r := rebuilt(); r < 1 || r > 20 {
		t.Fatalf("%v rebuilds for a burst of %d changes, want a handful", r, burst)
	}
	// The playlist after the burst is as long as before (an empty one
	// would hold no offline item either: 499 items are still on line) and
	// without the item the last change took off.
	pl, _, _ = b.public(9, time.Now())
	if len(pl.Entries) != entries {
		t.Fatalf("after the burst the playlist has %d entries, want %d as before", len(pl.Entries), entries)
	}
	for _, e := range pl.Entries {
		if e.ItemID == top {
			t.Fatalf("item %d taken offline by the last change is still in the playlist", top)
		}
	}
	t.Logf("%d changes: %v rebuilds, %v merged", burst, rebuilt(), merged())
}
