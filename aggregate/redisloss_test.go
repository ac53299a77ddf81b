package aggregate

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/onair/onair/history"
	"github.com/onair/onair/ingest"
	"github.com/onair/onair/internal/childproc"
	"github.com/onair/onair/internal/testenv"
)

// lossModel is what history must show, from the documented rules alone:
// every reported item, updated_at = the newest report's ts (one device, so
// no tie-break), the position of expectation (newest non-zero position).
type lossModel struct {
	mu sync.Mutex // guards the rest while reports are sent concurrently
	*expectation
	touch   map[string]int64 // "user/biz:item" → newest ts
	users   map[uint64]bool
	retries []ingest.Event // events with a client id, to send again
}

func newLossModel() *lossModel {
	return &lossModel{expectation: newExpectation(), touch: map[string]int64{}, users: map[uint64]bool{}}
}

func (m *lossModel) add(e ingest.Event) {
	m.expectation.add(e)
	if e.Type != ingest.TypeProgress && e.Type != ingest.TypePlay {
		return
	}
	k := fmt.Sprintf("%d/%s:%d", e.UserID, e.Biz, e.ItemID)
	m.touch[k] = max(m.touch[k], e.TS)
	m.users[e.UserID] = true
	if e.EventID != "" && !e.ServerID && len(m.retries) < 40 {
		m.retries = append(m.retries, e)
	}
}

// historyMismatch reads every user's history and progress through the
// Store, as a reader after a loss does (the read re-warms), and describes
// the first difference from the model, or returns "".
func (h *harness) historyMismatch(m *lossModel) string {
	ctx := context.Background()
	for u := range m.users {
		p, err := h.hist.History(ctx, u, 0, history.MaxLimit, "")
		if err != nil {
			return err.Error()
		}
		got := map[string]history.Entry{}
		for _, e := range p.Items {
			got[fmt.Sprintf("%d/%s", u, e.Key())] = e
		}
		for k, ts := range m.touch {
			if !hasUser(k, u) {
				continue
			}
			e, ok := got[k]
			switch {
			case !ok:
				return fmt.Sprintf("history lacks %s (reported at %d)", k, ts)
			case e.UpdatedAt != ts:
				return fmt.Sprintf("history %s updated_at %d, want %d", k, e.UpdatedAt, ts)
			case e.PositionMs != m.pos[k].positionMs:
				return fmt.Sprintf("history %s position %d, want %d", k, e.PositionMs, m.pos[k].positionMs)
			}
		}
	}
	return ""
}

func hasUser(k string, u uint64) bool {
	var ku uint64
	_, err := fmt.Sscanf(k, "%d/", &ku)
	return err == nil && ku == u
}

// waitHistory polls until every user's history matches the model, failing
// after d.
func (h *harness) waitHistory(m *lossModel, d time.Duration, what string) {
	h.t.Helper()
	deadline := time.Now().Add(d)
	for {
		mismatch := h.historyMismatch(m)
		if mismatch == "" {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("%s: history does not match the model after %s: %s", what, d, mismatch)
		}
		time.Sleep(20 * time.Millisecond) // polling interval, not synchronisation
	}
}

// lossHarness is a harness whose Redis is a private server the test may
// flush, stop and wipe, with an aggregator running.
func lossHarness(t *testing.T) (*harness, *childproc.Server, *lossModel) {
	h := newHarness(t, 4)
	rs := testenv.PrivateRedis(t)
	h.rdb = redis.NewClient(&redis.Options{Addr: rs.Addr()})
	t.Cleanup(func() { h.rdb.Close() })
	h.hist = h.newHistory(h.rdb, h.ch)
	cfg := h.config()
	cfg.ProgressFlush = lossProgressFlush
	h.start(cfg)
	return h, rs, newLossModel()
}

// send produces round's n generated events (seeded by seed) and adds them
// to the model.
func (m *lossModel) send(h *harness, seed uint64, round, n int) {
	base := time.Now().Add(-time.Hour).Truncate(time.Hour).UnixMilli()
	evs := gen(rand.New(rand.NewPCG(uint64(round), seed)), n, lossUsers, 6, base+int64(round)*1000)
	h.produce(evs...)
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, e := range evs {
		m.add(e)
	}
}

// lossProgressFlush is the progress flush of the loss tests: long enough
// that a loss lands before, during and after one, and the bound the tests
// hold recovery to.
const lossProgressFlush = 3 * time.Second

// lossUsers is how many users the loss tests' reports come from.
const lossUsers = 8

// TestRedisLossAtAnyInstantKeepsHistory loses Redis (FLUSHALL) before a
// progress flush (the reports are in Redis only), right after one, and
// many times across flushes while reports keep coming and readers keep
// re-warming. Within the progress flush interval of each loss every
// accepted report is back, none older than it was; retries of events
// accepted before the losses are counted once.
func TestRedisLossAtAnyInstantKeepsHistory(t *testing.T) {
	t.Parallel()
	h, _, m := lossHarness(t)
	send := func(round int) { m.send(h, 11, round, 150) }
	ctx := context.Background()
	lose := func(what string) {
		t.Helper()
		if err := h.rdb.FlushAll(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		// read at once: the re-warm finds ClickHouse behind Redis
		_ = h.historyMismatch(m)
		h.waitHistory(m, lossProgressFlush, what)
	}

	send(0)
	h.waitHistory(m, 20*time.Second, "round 0 visible")
	lose("loss before the progress flush")

	send(1)
	h.waitHistory(m, 20*time.Second, "round 1 visible")
	testenv.Wait(t, 20*time.Second, func() bool { return h.progressMismatch(m.expectation) == "" }, "round 1 in onair.progress")
	lose("loss right after the progress flush")

	// a storm: losses every ~150 ms over two progress flushes, reports
	// every 50 ms, a reader re-warming all the time
	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for i := 0; !stop.Load(); i++ {
			_ = h.rdb.FlushAll(ctx).Err()
			time.Sleep(time.Duration(100+i*37%100) * time.Millisecond)
		}
	}()
	go func() {
		defer wg.Done()
		for !stop.Load() {
			for u := uint64(1); u <= lossUsers; u++ {
				_, _ = h.hist.History(ctx, u, 0, history.MaxLimit, "")
			}
		}
	}()
	for round := 2; round < 2+int(2*lossProgressFlush/(50*time.Millisecond)); round++ {
		send(round)
		time.Sleep(50 * time.Millisecond) // pacing of the load, not synchronisation
	}
	stop.Store(true)
	wg.Wait()
	lose("loss after the storm")

	// clients retry events accepted before the losses
	h.produce(m.retries...)
	h.waitEvents(m.expectation)
	h.check(m.expectation)
	h.waitHistory(m, lossProgressFlush, "after the retries")
}

// TestRedisWipedUnderLoadKeepsHistory restarts redis-server with its data
// directory wiped while reports keep coming: afterwards every accepted
// report is in history, and client retries of events accepted before the
// wipe are counted once.
func TestRedisWipedUnderLoadKeepsHistory(t *testing.T) {
	t.Parallel()
	h, rs, m := lossHarness(t)
	var stop atomic.Bool
	var rounds atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for round := 0; !stop.Load(); round++ {
			m.send(h, 13, round, 100)
			rounds.Add(1)
			time.Sleep(30 * time.Millisecond) // pacing of the load, not synchronisation
		}
	}()
	testenv.Wait(t, 20*time.Second, func() bool { return rounds.Load() >= 20 }, "20 rounds of load")
	m.mu.Lock()
	retries := append([]ingest.Event(nil), m.retries...)
	m.mu.Unlock()
	ctx := context.Background()
	if err := rs.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	wipeRedisData(t, rs.Dir())
	if err := rs.Start(ctx); err != nil {
		t.Fatal(err)
	}
	at := rounds.Load()
	testenv.Wait(t, 20*time.Second, func() bool { return rounds.Load() >= at+20 }, "20 rounds after the wipe")
	h.produce(retries...)
	stop.Store(true)
	<-done
	h.waitEvents(m.expectation)
	h.check(m.expectation)
	h.waitHistory(m, lossProgressFlush, "after the wipe")
}

// waitEvents waits until onair.events holds every expected event id (check
// then tells whether any is there twice).
func (h *harness) waitEvents(x *expectation) {
	h.t.Helper()
	testenv.Wait(h.t, 30*time.Second, func() bool {
		c := h.eventCounts()
		for id := range x.ids {
			if c[id] == 0 {
				return false
			}
		}
		return true
	}, "all %d events in onair.events", len(x.ids))
}

// wipeRedisData removes everything redis-server persisted in dir, keeping
// its config and log.
func wipeRedisData(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if n := e.Name(); n != "redis.conf" && n != "redis.log" {
			if err := os.RemoveAll(filepath.Join(dir, n)); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestRedisLossNeverRegressesProgressRows: after a loss, a play (no
// position) of an item whose resume point only ClickHouse still holds
// reaches onair.progress before anyone reads the user: the row keeps the
// older position under the newer play, so a later re-warm restores it.
func TestRedisLossNeverRegressesProgressRows(t *testing.T) {
	t.Parallel()
	h, _, _ := lossHarness(t)
	ctx := context.Background()
	ts := time.Now().Add(-time.Minute).UnixMilli()
	h.produce(ingest.Event{Type: ingest.TypeProgress, UserID: 5, Biz: ingest.BizVideo, ItemID: 1, TS: ts,
		PositionMs: 99_000, DurationMs: 600_000, Device: "tv"})
	row := func() (pos, tsMs uint64) {
		_ = h.ch.QueryRow(ctx, "SELECT position_ms, ts_ms FROM "+h.db+".progress FINAL WHERE user_id = 5 AND item_id = 1").Scan(&pos, &tsMs)
		return pos, tsMs
	}
	testenv.Wait(t, 20*time.Second, func() bool { p, _ := row(); return p == 99_000 }, "the position in onair.progress")
	// one more progress flush (another user's), so that the aggregator
	// holds nothing of user 5 any more: only ClickHouse has the position
	h.produce(ingest.Event{Type: ingest.TypeProgress, UserID: 6, Biz: ingest.BizVideo, ItemID: 1, TS: ts, PositionMs: 1, DurationMs: 9})
	testenv.Wait(t, 20*time.Second, func() bool {
		var n uint64
		err := h.ch.QueryRow(ctx, "SELECT count() FROM "+h.db+".progress WHERE user_id = 6").Scan(&n)
		return err == nil && n == 1
	}, "the next progress flush")
	if err := h.rdb.FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	h.produce(ingest.Event{Type: ingest.TypePlay, UserID: 5, Biz: ingest.BizVideo, ItemID: 1, TS: ts + 1000, Device: "tv"})
	testenv.Wait(t, 20*time.Second, func() bool { _, at := row(); return at == uint64(ts+1000) }, "the play in onair.progress")
	if pos, _ := row(); pos != 99_000 {
		t.Fatalf("onair.progress after the play: position %d, want 99000 (the older resume point)", pos)
	}
	if err := h.rdb.FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	k := history.ItemKey{Biz: ingest.BizVideo, ItemID: 1}
	got, err := h.hist.Progress(ctx, 5, []history.ItemKey{k})
	if err != nil || got[k].PositionMs != 99_000 || got[k].UpdatedAt != ts+1000 {
		t.Fatalf("progress after a second loss: %+v, %v; want position 99000 at %d", got[k], err, ts+1000)
	}
}
