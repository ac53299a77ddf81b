package rooms

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/onair/onair/aggregate"
	"github.com/onair/onair/ingest"
	"github.com/onair/onair/internal/testenv"
)

// TestRankingRebuiltAfterRedisLoss flushes a private Redis (FLUSHALL)
// under two real aggregators at three instants while gifts flow (some with
// client ids, some of those retried across the loss) and once when
// everything has settled, and checks every room's ranking equals the
// model: each original gift counted once, whether it was accepted before
// the loss, in flight across it (in Kafka, not yet in ClickHouse) or after.
func TestRankingRebuiltAfterRedisLoss(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 4, nil)
	rs := testenv.PrivateRedis(t)
	w.rdb = redis.NewClient(&redis.Options{Addr: rs.Addr()})
	t.Cleanup(func() { w.rdb.Close() })
	ch, db := testenv.ClickHouse(t)
	var err error
	if w.b, err = New(Config{Redis: w.rdb, Prefix: w.prefix, Kafka: w.kcl, Events: w.prod, ClickHouse: ch, Database: db}); err != nil {
		t.Fatal(err)
	}
	// Two aggregators share the partitions: each rebuilds its own share.
	w.runAggregator(aggregatorConfig(t, w.brokers, w.rdb, w.prefix, ch, db, w.b))
	w.runAggregator(aggregatorConfig(t, w.brokers, w.rdb, w.prefix, ch, db, w.b))
	ctx := ctxT(t)
	flush := func(what string) {
		if err := w.rdb.FlushAll(ctx).Err(); err != nil {
			t.Fatalf("FLUSHALL %s: %v", what, err)
		}
	}
	want := map[uint64]map[uint64]uint64{}
	lossGifts(w, want, 0, 10, nil) // counted and in ClickHouse before the first loss
	w.waitRanking(want, 30*time.Second, "before any loss")
	done := make(chan struct{})
	go func() {
		defer close(done)
		lossGifts(w, want, 10, 60, func(round int) {
			if round == 20 || round == 35 || round == 50 {
				flush(fmt.Sprintf("at round %d", round))
			}
		})
	}()
	<-done
	w.waitRanking(want, 30*time.Second, "after three losses while gifts flowed")
	flush("after everything settled")
	start := time.Now()
	w.waitRanking(want, 10*time.Second, "after a loss at rest")
	t.Logf("rankings whole again %s after a FLUSHALL at rest (the aggregator's --redis-flush: %s)", time.Since(start), 20*time.Millisecond)
	lossGifts(w, want, 60, 65, nil)
	w.waitRanking(want, 30*time.Second, "after a loss at rest and more gifts")
}

// lossGifts produces rounds [from, to) of 40 gifts into rooms 1–3 from users
// 1–30 and four new users a round; a third carry client ids, and a quarter of those are sent again
// the next round (client retries, so some straddle a loss). want gets each
// original gift's value. before, if set, runs before each round.
func lossGifts(w *world, want map[uint64]map[uint64]uint64, from, to int, before func(round int)) {
	rng := rand.New(rand.NewPCG(uint64(from), 11))
	var retries []ingest.Event
	for round := from; round < to; round++ {
		if before != nil {
			before(round)
		}
		evs := retries
		retries = nil
		for i := range 40 {
			ev := ingest.Event{Type: ingest.TypeGift, UserID: uint64(1 + rng.IntN(30)), RoomID: uint64(1 + rng.IntN(3)),
				AnchorID: 8, GiftID: 1, Value: uint64(1 + rng.IntN(100)), TS: time.Now().UnixMilli()}
			if i < 4 {
				ev.UserID = uint64(100 + 4*round + i) // new users: ClickHouse may not hold them at a rebuild
			}
			if rng.IntN(3) == 0 {
				ev.EventID = fmt.Sprintf("loss%d-%d", round, i)
				if rng.IntN(4) == 0 {
					retries = append(retries, ev)
				}
			}
			if want[ev.RoomID] == nil {
				want[ev.RoomID] = map[uint64]uint64{}
			}
			want[ev.RoomID][ev.UserID] += ev.Value
			evs = append(evs, ev)
		}
		if err := w.prod.Produce(context.Background(), evs); err != nil {
			w.t.Error(err)
			return
		}
		time.Sleep(25 * time.Millisecond) // pacing the producer, not synchronisation
	}
}

// waitRanking polls until every room's ranking equals want, failing after d.
func (w *world) waitRanking(want map[uint64]map[uint64]uint64, d time.Duration, what string) {
	w.t.Helper()
	mismatch := func() string {
		for room, users := range want {
			got := w.board(room)
			for u, v := range users {
				if got[u] != v {
					return fmt.Sprintf("room %d user %d: %d, want %d (room total %d, want %d)", room, u, got[u], v, total(got), total(users))
				}
			}
			if len(got) != len(users) {
				return fmt.Sprintf("room %d: %d users, want %d", room, len(got), len(users))
			}
		}
		return ""
	}
	deadline := time.Now().Add(d)
	for m := mismatch(); m != ""; m = mismatch() {
		if time.Now().After(deadline) {
			w.t.Fatalf("%s: the rankings differ from the model after %s: %s", what, d, m)
		}
		time.Sleep(50 * time.Millisecond) // polling interval, not synchronisation
	}
}

// TestRankingRebuiltWhenAggregatorStartsAfterLoss stops the aggregator,
// flushes Redis while none runs (a restart on a wiped Redis), starts a
// new one, which sees the loss only in the epoch it finds, and checks the
// rankings come back exact; then a third aggregator in the same epoch
// must not rebuild again (that would lower the fences the second moved).
func TestRankingRebuiltWhenAggregatorStartsAfterLoss(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 4, nil)
	rs := testenv.PrivateRedis(t)
	w.rdb = redis.NewClient(&redis.Options{Addr: rs.Addr()})
	t.Cleanup(func() { w.rdb.Close() })
	ch, db := testenv.ClickHouse(t)
	var err error
	if w.b, err = New(Config{Redis: w.rdb, Prefix: w.prefix, Kafka: w.kcl, Events: w.prod, ClickHouse: ch, Database: db}); err != nil {
		t.Fatal(err)
	}
	cfg := aggregatorConfig(t, w.brokers, w.rdb, w.prefix, ch, db, w.b)
	want := map[uint64]map[uint64]uint64{}
	stop := w.startAggregator(cfg)
	lossGifts(w, want, 0, 10, nil)
	w.waitRanking(want, 30*time.Second, "before the loss")
	stop()
	if err := w.rdb.FlushAll(ctxT(t)).Err(); err != nil {
		t.Fatal(err)
	}
	stop = w.startAggregator(cfg)
	lossGifts(w, want, 10, 20, nil)
	w.waitRanking(want, 30*time.Second, "after a restart on a flushed Redis")
	stop()
	w.startAggregator(cfg)
	lossGifts(w, want, 20, 30, nil)
	w.waitRanking(want, 30*time.Second, "after another restart in the same epoch")
	// One loss, one epoch: each partition rebuilt in it, by one owner or another.
	done, err := w.b.Rebuilt(ctxT(t))
	if err != nil || len(done) != 4 || done[0] == "" || done[0] != done[1] || done[0] != done[2] || done[0] != done[3] {
		t.Fatalf("Rebuilt: %v (%v), want 4 partitions rebuilt in one epoch", done, err)
	}
}

// startAggregator runs an aggregator until the returned stop (or cleanup).
func (w *world) startAggregator(cfg aggregate.Config) (stop func()) {
	w.t.Helper()
	a, err := aggregate.New(cfg)
	if err != nil {
		w.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				w.t.Errorf("aggregator: %v", err)
			}
		})
	}
	w.t.Cleanup(stop)
	return stop
}
