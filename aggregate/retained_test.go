package aggregate

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/onair/onair/ingest"
	"github.com/onair/onair/internal/testenv"
)

// TestRetainedStateReturnsToBound drives a million distinct history
// entries through an aggregator and checks the documented memory bound
// (retained.go): once the load stops, every window lands and the
// aggregator holds nothing. The entries are cold (Redis began a lifetime
// after ClickHouse had data, as after a loss), so each progress flush
// joins them with onair.progress: before the lookup was split into
// queries under ClickHouse's max_query_size, a window of more than ~17 000
// cold entries failed on every retry and stayed in memory for good.
func TestRetainedStateReturnsToBound(t *testing.T) {
	if testing.Short() {
		t.Skip("a million entries")
	}
	users, items := 10_000, 100 // a million entries
	if testenv.Race {
		users = 1_000 // 100 000: still far past one query's worth
	}
	h := newHarness(t, 4)
	ctx := context.Background()

	// ClickHouse holds an event, Redis no epoch: the aggregator's first
	// epoch says Redis lost its data, and every entry it writes is cold.
	stop := h.start(h.config())
	h.produce(ingest.Event{Type: ingest.TypePlay, UserID: 1, Biz: ingest.BizAudio, ItemID: 1, TS: time.Now().UnixMilli()})
	testenv.Wait(t, 30*time.Second, func() bool { return h.totalEvents() == 1 }, "the first event in ClickHouse")
	stop()
	if err := h.rdb.Del(ctx, h.prefix+"epoch").Err(); err != nil {
		t.Fatal(err)
	}

	a, _ := h.startAgg(h.config())
	ts := time.Now().UnixMilli()
	batch := make([]ingest.Event, 0, 10_000)
	for u := 1; u <= users; u++ {
		for i := 1; i <= items; i++ {
			batch = append(batch, ingest.Event{Type: ingest.TypeProgress, UserID: uint64(u), Biz: ingest.BizAudio,
				ItemID: uint64(i), TS: ts, PositionMs: uint64(1000 * i), DurationMs: 200_000})
		}
		if len(batch) == cap(batch) || u == users {
			h.produce(batch...)
			batch = batch[:0]
		}
	}
	want := uint64(users * items) // the first event's entry among them
	var peak Retained
	testenv.Wait(t, time.Duration(testenv.RaceSlowdown)*3*time.Minute, func() bool {
		r := a.Retained()
		peak = Retained{max(peak.Dirty, r.Dirty), max(peak.Held, r.Held), max(peak.Progress, r.Progress),
			max(peak.Retired, r.Retired), max(peak.InFlight, r.InFlight), max(peak.Events, r.Events)}
		return h.progressRows() == want
	}, "%d rows in onair.progress (retained %+v)", want, a.Retained())
	// No state holds an entry twice.
	if n := users * items; max(peak.Dirty, peak.Held, peak.Progress, peak.Retired) > n {
		t.Errorf("held %+v at the peak; only %d entries were reported", peak, n)
	}
	// The last window landed; its held states are retired until the next
	// epoch check, a RedisFlush later.
	testenv.Wait(t, 30*time.Second, func() bool { return a.Retained() == Retained{} },
		"the aggregator to hold nothing once every window landed: holds %+v", a.Retained())
}

// progressRows counts the entries of onair.progress.
func (h *harness) progressRows() uint64 {
	var n uint64
	if err := h.ch.QueryRow(context.Background(), fmt.Sprintf("SELECT count() FROM (SELECT 1 FROM %s.progress FINAL)", h.db)).Scan(&n); err != nil {
		h.t.Logf("count progress: %v", err)
		return 0
	}
	return n
}
