package aggregate

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/onair/onair/history"
	"github.com/onair/onair/ingest"
	"github.com/onair/onair/internal/testenv"
)

// gen makes n events of a realistic mix for users 1..users: mostly progress
// reports in shuffled order (late events), some with position 0, some
// plays, likes and gifts, a third with client event ids.
func gen(rng *rand.Rand, n, users, items int, base int64) []ingest.Event {
	evs := make([]ingest.Event, n)
	for i := range evs {
		e := ingest.Event{
			Type: ingest.TypeProgress, UserID: uint64(1 + rng.IntN(users)), Biz: ingest.Bizes[rng.IntN(3)],
			ItemID: uint64(1 + rng.IntN(items)), TS: base + int64(rng.IntN(600_000)),
			PositionMs: uint64(rng.IntN(1_800_000)), DurationMs: 1_800_000, Device: "ios",
		}
		switch r := rng.IntN(20); {
		case r == 0:
			e.PositionMs = 0
		case r == 1:
			e.Type, e.PositionMs, e.DurationMs, e.ListenedMs, e.StationID = ingest.TypePlay, 0, 0, 30_000, 3
		case r == 2:
			e.Type, e.PositionMs, e.DurationMs = ingest.TypeLike, 0, 0
		case r == 3:
			e = ingest.Event{Type: ingest.TypeGift, UserID: e.UserID, RoomID: 5, AnchorID: 8, GiftID: 2, Value: 200, TS: e.TS}
		}
		if rng.IntN(3) == 0 {
			e.EventID = fmt.Sprintf("c-%d-%d", base, i)
		}
		evs[i] = e
	}
	return evs
}

func TestPipelineExactlyOnceAndLWW(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 8)
	rng := rand.New(rand.NewPCG(7, 7))
	x := newExpectation()
	evs := gen(rng, 3000, 40, 15, time.Now().Add(-time.Hour).UnixMilli())
	h.start(h.config())
	for i := 0; i < len(evs); i += 250 {
		batch := evs[i : i+250]
		h.produce(batch...)
		for _, e := range batch {
			x.add(e)
		}
	}
	testenv.Wait(t, 30*time.Second, func() bool { return h.totalEvents() >= uint64(len(x.ids)) },
		"ClickHouse to hold %d events (has %d)", len(x.ids), h.totalEvents())
	h.check(x)
}

func TestClientRetryCountedOnce(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 4)
	now := time.Now().UnixMilli()
	e := ingest.Event{Type: ingest.TypeProgress, UserID: 9, Biz: ingest.BizAudio, ItemID: 1, TS: now, PositionMs: 500, DurationMs: 1000, EventID: "retry-me"}
	// The same report three times: twice in one flush window, once after.
	h.produce(e, e)
	h.start(h.config())
	testenv.Wait(t, 20*time.Second, func() bool { return h.eventCounts()["retry-me"] >= 1 }, "first copy in ClickHouse")
	h.produce(e)
	marker := ingest.Event{Type: ingest.TypeLike, UserID: 9, Biz: ingest.BizAudio, ItemID: 2, TS: now, EventID: "after"}
	h.produce(marker)
	testenv.Wait(t, 20*time.Second, func() bool { return h.eventCounts()["after"] == 1 }, "marker in ClickHouse")
	if n := h.eventCounts()["retry-me"]; n != 1 {
		t.Fatalf("event retried 3 times is in ClickHouse %d times, want 1", n)
	}
}

func TestDeleteIsNotResurrectedByOlderEvent(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 2)
	h.start(h.config())
	ctx := context.Background()
	now := time.Now()
	h.produce(ingest.Event{Type: ingest.TypeProgress, UserID: 3, Biz: ingest.BizVideo, ItemID: 9, TS: now.Add(-time.Minute).UnixMilli(), PositionMs: 5000, DurationMs: 60000})
	ik := history.ItemKey{Biz: ingest.BizVideo, ItemID: 9}
	testenv.Wait(t, 10*time.Second, func() bool {
		m, _ := h.hist.Progress(ctx, 3, []history.ItemKey{ik})
		return m[ik].PositionMs == 5000
	}, "progress visible")
	if err := h.hist.Delete(ctx, 3, ingest.BizVideo, 9, now); err != nil {
		t.Fatal(err)
	}
	// A late report older than the delete, then a marker: a newer report of
	// the same user (so the same partition, behind the late one) on another
	// item. The Redis write-back runs on its own, apart from ClickHouse, so
	// only the marker visible in Redis says the late report's write-back
	// ran too (the same or an earlier apply.lua call).
	h.produce(
		ingest.Event{Type: ingest.TypeProgress, UserID: 3, Biz: ingest.BizVideo, ItemID: 9, TS: now.Add(-30 * time.Second).UnixMilli(), PositionMs: 7000, DurationMs: 60000, EventID: "late"},
		ingest.Event{Type: ingest.TypeProgress, UserID: 3, Biz: ingest.BizVideo, ItemID: 10, TS: now.UnixMilli(), PositionMs: 1000, DurationMs: 60000, EventID: "marker"})
	marker := history.ItemKey{Biz: ingest.BizVideo, ItemID: 10}
	testenv.Wait(t, 10*time.Second, func() bool {
		m, _ := h.hist.Progress(ctx, 3, []history.ItemKey{marker})
		return m[marker].PositionMs == 1000
	}, "the marker behind the late event visible in Redis")
	testenv.Wait(t, 10*time.Second, func() bool { return h.eventCounts()["late"] == 1 }, "late event in ClickHouse")
	m, err := h.hist.Progress(ctx, 3, []history.ItemKey{ik})
	if err != nil {
		t.Fatal(err)
	}
	if e, ok := m[ik]; ok {
		t.Fatalf("deleted item resurrected by an older event: %+v", e)
	}
}

// TestKillAnywhereExactlyOnce SIGKILLs the aggregator process at random
// instants while events flow, restarts it, and checks ClickHouse holds every
// event exactly once and every resume position equals the newest report.
func TestKillAnywhereExactlyOnce(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 4)
	startChild := h.startChild
	rng := rand.New(rand.NewPCG(11, 13))
	x := newExpectation()
	var mu sync.Mutex
	done := make(chan struct{})
	go func() {
		defer close(done)
		base := time.Now().Add(-2 * time.Hour).UnixMilli()
		for round := 0; round < 100; round++ {
			evs := gen(rand.New(rand.NewPCG(uint64(round), 1)), 200, 30, 10, base+int64(round)*1000)
			h.produce(evs...)
			mu.Lock()
			for _, e := range evs {
				x.add(e)
			}
			mu.Unlock()
			time.Sleep(25 * time.Millisecond) // pacing the producer, not synchronisation
		}
	}()
	kills := 0
	for running := true; running; {
		cmd := startChild()
		select {
		case <-done:
			running = false
		case <-time.After(time.Duration(100+rng.IntN(400)) * time.Millisecond):
		}
		if running {
			_ = cmd.Process.Signal(syscall.SIGKILL)
			_ = cmd.Wait()
			kills++
			continue
		}
		// Production finished: let this last child catch up, then stop it.
		mu.Lock()
		want := len(x.ids)
		mu.Unlock()
		testenv.Wait(t, 60*time.Second, func() bool { return h.totalEvents() >= uint64(want) },
			"ClickHouse to hold %d events after %d kills (has %d)", want, kills, h.totalEvents())
		// The last child stays up until held progress reaches ClickHouse.
		if kills < 3 {
			t.Fatalf("only %d kills happened; the test did not exercise crashes", kills)
		}
		t.Logf("%d events, %d kills", len(x.ids), kills)
		h.check(x)
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
	}
}
