package aggregate

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/onair/onair/ingest"
	"github.com/onair/onair/internal/testenv"
)

// TestRollupsExactUnderReplay SIGKILLs the aggregator at random instants
// (so partitions are replayed from their ClickHouse watermarks) while plays,
// skips and likes on radio stations flow, a third of them sent twice with
// the same client event_id as a retrying client does. Then the rollups of
// 0041 — user_daily, station_daily, user_affinity (joined with the
// catalog) — must equal what the test computes from the events it sent,
// each counted once.
func TestRollupsExactUnderReplay(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 4)
	insertReplayCatalog(t, h)
	x := newRollupModel()
	var sent atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		sent.Store(int64(produceWithRetries(h, x)))
	}()
	kills := 0
	rng := rand.New(rand.NewPCG(7, 9))
	for {
		cmd := h.startChild()
		select {
		case <-done:
		case <-time.After(time.Duration(100+rng.IntN(300)) * time.Millisecond):
			_ = cmd.Process.Signal(syscall.SIGKILL)
			_ = cmd.Wait()
			kills++
			continue
		}
		n := uint64(sent.Load())
		testenv.Wait(t, 60*time.Second, func() bool { return h.totalEvents() >= n },
			"ClickHouse to hold %d events after %d kills (has %d)", n, kills, h.totalEvents())
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
		break
	}
	if kills < 2 {
		t.Fatalf("only %d kills happened; the test did not exercise replays", kills)
	}
	if n := h.totalEvents(); n != uint64(sent.Load()) {
		t.Fatalf("events holds %d rows, want the %d sent once each", n, sent.Load())
	}
	checkRollup(t, h, "station_daily", "SELECT station_id, '', sum(plays), sum(listened_ms), sum(skips) FROM "+h.db+".station_daily GROUP BY station_id", x.station)
	checkRollup(t, h, "user_daily", "SELECT user_id, '', sum(plays), sum(listened_ms), sum(skips) FROM (SELECT user_id, plays, listened_ms, "+
		"toUInt64(0) AS skips FROM "+h.db+".user_daily UNION ALL SELECT user_id, 0, 0, skips FROM "+h.db+".user_item_daily) GROUP BY user_id", x.user)
	checkRollup(t, h, "user_affinity", "SELECT user_id, concat(toString(kind), ':', key), sum(plays), sum(listened_ms), sum(skips) FROM "+h.db+
		".user_affinity GROUP BY user_id, kind, key", x.affinity)
	t.Logf("%d events (+ retries), %d kills: rollups exact", sent.Load(), kills)
}

// replayTags is the catalog of the replay test: item i has category
// c<i%3> and tags t<i%4>, t<(i+1)%4>.
func replayTags(i uint64) []string {
	return []string{fmt.Sprintf("t%d", i%4), fmt.Sprintf("t%d", (i+1)%4)}
}

func insertReplayCatalog(t *testing.T, h *harness) {
	t.Helper()
	b, err := h.ch.PrepareBatch(context.Background(), "INSERT INTO "+h.db+".catalog (item_id, biz, category, tags, version)")
	if err != nil {
		t.Fatal(err)
	}
	for i := uint64(1); i <= 12; i++ {
		if err := b.Append(i, "audio", fmt.Sprintf("c%d", i%3), replayTags(i), uint64(1)); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
}

// rollupKey and rollupSums are one row of a rollup as the test reads it.
type rollupKey struct {
	a    uint64
	kind string
}

type rollupSums struct{ plays, listened, skips uint64 }

// rollupModel is what the rollups must hold, from the rule of each view.
type rollupModel struct{ station, user, affinity map[rollupKey]rollupSums }

func newRollupModel() *rollupModel {
	return &rollupModel{station: map[rollupKey]rollupSums{}, user: map[rollupKey]rollupSums{}, affinity: map[rollupKey]rollupSums{}}
}

func (x *rollupModel) add(m map[rollupKey]rollupSums, k rollupKey, e *ingest.Event) {
	s := m[k]
	switch e.Type {
	case ingest.TypePlay:
		s.plays++
		s.listened += e.ListenedMs
	case ingest.TypeSkip:
		s.skips++
	}
	m[k] = s
}

// count applies one event sent once.
func (x *rollupModel) count(e *ingest.Event) {
	if e.Type == ingest.TypeLike {
		if _, ok := x.user[rollupKey{e.UserID, ""}]; !ok {
			x.user[rollupKey{e.UserID, ""}] = rollupSums{} // a row of zeros in user_daily
		}
		return
	}
	x.add(x.station, rollupKey{e.StationID, ""}, e)
	x.add(x.user, rollupKey{e.UserID, ""}, e)
	x.add(x.affinity, rollupKey{e.UserID, fmt.Sprintf("category:c%d", e.ItemID%3)}, e)
	for _, tag := range replayTags(e.ItemID) {
		x.add(x.affinity, rollupKey{e.UserID, "tag:" + tag}, e)
	}
}

// produceWithRetries sends 40 rounds of 100 plays, skips and likes; each
// round also resends the previous round's client-id events (34 of them),
// as a client that did not see its 202 does. It returns the events sent
// once.
func produceWithRetries(h *harness, x *rollupModel) int {
	rng := rand.New(rand.NewPCG(3, 5))
	base := time.Now().Add(-time.Hour).UnixMilli()
	var retries []ingest.Event
	sent := 0
	for round := range 40 {
		evs := make([]ingest.Event, 0, 150)
		for i := range 100 {
			e := ingest.Event{Type: []ingest.Type{ingest.TypePlay, ingest.TypeSkip, ingest.TypeLike}[rng.IntN(3)],
				UserID: uint64(1 + rng.IntN(20)), Biz: ingest.BizAudio, ItemID: uint64(1 + rng.IntN(12)),
				StationID: uint64(1 + rng.IntN(3)), TS: base + int64(round*1000+i)}
			if e.Type == ingest.TypePlay {
				e.ListenedMs = uint64(1000 + rng.IntN(100_000))
			}
			if i%3 == 0 {
				e.EventID = fmt.Sprintf("r%d-%d", round, i)
				retries = append(retries, e)
			}
			x.count(&e)
			sent++
			evs = append(evs, e)
		}
		evs = append(evs, retries[:len(retries)-34]...)
		retries = retries[len(retries)-34:]
		h.produce(evs...)
		time.Sleep(20 * time.Millisecond) // pacing the producer, not synchronisation
	}
	return sent
}

// checkRollup polls q, which returns (key, kind, plays, listened, skips)
// rows, until it equals want: the views write after events takes a block,
// inside the same INSERT, so a rollup may trail events by an INSERT still
// running.
func checkRollup(t *testing.T, h *harness, name, q string, want map[rollupKey]rollupSums) {
	t.Helper()
	read := func() map[rollupKey]rollupSums {
		rows, err := h.ch.Query(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		out := map[rollupKey]rollupSums{}
		for rows.Next() {
			var k rollupKey
			var s rollupSums
			if err := rows.Scan(&k.a, &k.kind, &s.plays, &s.listened, &s.skips); err != nil {
				t.Fatal(err)
			}
			out[k] = s
		}
		return out
	}
	got := read()
	for deadline := time.Now().Add(30 * time.Second); !reflect.DeepEqual(got, want) && time.Now().Before(deadline); got = read() {
		time.Sleep(50 * time.Millisecond) // polling with a deadline
	}
	if !reflect.DeepEqual(got, want) {
		for k, w := range want {
			if got[k] != w {
				t.Errorf("%s %v: rollup %+v, sent %+v", name, k, got[k], w)
			}
		}
		t.Fatalf("%s differs from the events sent (%d keys rolled up, %d sent)", name, len(got), len(want))
	}
}
