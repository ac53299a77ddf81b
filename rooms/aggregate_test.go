package rooms

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/onair/onair/aggregate"
	"github.com/onair/onair/history"
	"github.com/onair/onair/ingest"
	"github.com/onair/onair/internal/chdb"
	"github.com/onair/onair/internal/testenv"
	"github.com/onair/onair/rooms/wire"
)

// aggregatorConfig is an aggregator that counts gifts into b.
func aggregatorConfig(t testing.TB, brokers []string, rdb redis.UniversalClient, prefix string, ch driver.Conn, db string, b *Board) aggregate.Config {
	hs, err := history.New(history.Config{Redis: rdb, Prefix: prefix, ClickHouse: ch, Database: db})
	if err != nil {
		t.Fatal(err)
	}
	return aggregate.Config{Brokers: brokers, History: hs, Redis: rdb, Prefix: prefix, ClickHouse: ch, Database: db,
		Rooms: b, RedisFlush: 20 * time.Millisecond, ClickHouseFlush: 100 * time.Millisecond,
		ProgressFlush: 300 * time.Millisecond, RetryBackoff: 20 * time.Millisecond}
}

func (w *world) runAggregator(cfg aggregate.Config) {
	w.t.Helper()
	a, err := aggregate.New(cfg)
	if err != nil {
		w.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	w.t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			w.t.Errorf("aggregator: %v", err)
		}
	})
}

func total(m map[uint64]uint64) (n uint64) {
	for _, v := range m {
		n += v
	}
	return n
}

// TestPKExactUnderConcurrentGifts posts 1 000 gifts at once through
// Board.Gift (the API's path) into two rooms in a PK, with the real
// aggregator counting them: every gift counts once in its room's ranking,
// the bar ends where the rule puts it, the winner is declared exactly at
// 100 and pushed to both rooms once, and leaderboard frames are throttled
// to one per second per room, the last equal to the stored state.
func TestPKExactUnderConcurrentGifts(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 4, nil)
	ch, db := testenv.ClickHouse(t)
	w.runAggregator(aggregatorConfig(t, w.brokers, w.rdb, w.prefix, ch, db, w.b))
	ctx := ctxT(t)
	start := time.Now()
	go w.b.Run(ctx)
	w.open(5, 50)
	w.open(6, 60)
	pk, err := w.startPK(5, 6)
	if err != nil {
		t.Fatal(err)
	}
	// 500 gifts of value 1 to each room: 50 points each way, 50:50 at the
	// end. Users alternate rooms and spread over every partition, so the
	// bar never strays near 0 or 100 on the way.
	w.giftsAtOnce(1000, func(i int) uint64 { return uint64(5 + i%2) }, 1)
	testenv.Wait(t, 60*time.Second, func() bool { return total(w.board(5)) == 500 && total(w.board(6)) == 500 },
		"rankings to count 500 each (room 5: %d, room 6: %d)", total(w.board(5)), total(w.board(6)))
	// A flush moves the rankings, then the PK bar: the last one may be
	// between the two. Every gift is in; the bar must come to rest at 50:50.
	testenv.Wait(t, 30*time.Second, func() bool {
		got, _ := w.b.PK(ctx, pk.PKID)
		return got.ScoreA == 50 && got.ScoreB == 50
	}, "the PK bar at 50:50 after 500 gifts of value 1 each way")
	for _, room := range []uint64{5, 6} {
		for u, s := range w.board(room) {
			if s != 1 {
				t.Fatalf("room %d: user %d has %d, want 1", room, u, s)
			}
		}
	}
	if got, _ := w.b.PK(ctx, pk.PKID); got.ScoreA != 50 || got.Winner != 0 {
		t.Fatalf("after 500 gifts of value 1 each way: %+v, want 50:50 and no winner", got)
	}
	// 5 × 100 to room 5 reach 100 exactly; later gifts change nothing.
	w.giftsAtOnce(5, func(int) uint64 { return 5 }, 100)
	testenv.Wait(t, 30*time.Second, func() bool { got, _ := w.b.PK(ctx, pk.PKID); return got.Winner != 0 }, "a winner")
	w.giftsAtOnce(3, func(int) uint64 { return 6 }, 100)
	testenv.Wait(t, 30*time.Second, func() bool { return total(w.board(6)) == 800 }, "room 6 to count the late gifts")
	if got, _ := w.b.PK(ctx, pk.PKID); got.Winner != 5 || got.ScoreA != 100 {
		t.Fatalf("final PK %+v, want room 5 winning at 100", got)
	}
	for _, room := range []uint64{5, 6} {
		won := 0
		for _, f := range ofType(w.frames(room), wire.TypePK) {
			if f.v["winner"] != float64(0) {
				won++
			}
		}
		if won != 1 {
			t.Fatalf("room %d got %d pk frames naming a winner, want 1", room, won)
		}
	}
	// The latest leaderboard frame reaches pushes and {r5}:state.
	_, ver, _ := w.b.Leaderboard(ctx, 5, 10)
	var lbs []frame
	testenv.Wait(t, 10*time.Second, func() bool {
		lbs = ofType(w.frames(5), wire.TypeLeaderboard)
		return len(lbs) > 0 && lbs[len(lbs)-1].v["version"] == float64(ver)
	}, "a leaderboard frame of room 5 at version %d", ver)
	if limit := int(time.Since(start)/time.Second) + 1; len(lbs) > limit {
		t.Fatalf("%d leaderboard frames for room 5 in %s, want at most %d", len(lbs), time.Since(start), limit)
	}
	if s, _ := w.rdb.HGet(ctx, w.b.roomKey(5, wire.KindState), wire.TypeLeaderboard).Result(); !strings.Contains(s, fmt.Sprintf(`"version":%d,`, ver)) {
		t.Fatalf("{r5}:state leaderboard = %s, want version %d", s, ver)
	}
}

// giftsAtOnce posts n gifts concurrently through Board.Gift, user 1000+i
// giving value to room(i).
func (w *world) giftsAtOnce(n int, room func(i int) uint64, value uint64) {
	w.t.Helper()
	ctx := ctxT(w.t)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := w.b.Gift(ctx, room(i), Caller{UserID: uint64(1000 + i)}, GiftInput{GiftID: 1, Value: value}); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		w.t.Fatal(err)
	}
}

// TestRankingExactUnderAggregatorKill SIGKILLs the aggregator process at
// random instants while gifts flow (some carrying client ids, some of
// those retried), restarts it, and checks every room's ranking and a PK's
// bar equal the model: each original gift once, no retry, no replay
// counted twice.
func TestRankingExactUnderAggregatorKill(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 4, nil)
	_, db := testenv.ClickHouse(t)
	cw := testenv.ChildWorld{Brokers: w.brokers, Redis: testenv.RedisAddr(t), Prefix: w.prefix, ClickHouse: testenv.ClickHouseAddr(t), Database: db}
	startChild := func() *exec.Cmd { return testenv.StartChild(t, "TestBoardAggregatorChild", cw) }
	w.open(3, 30)
	w.open(4, 40)
	pk, err := w.startPK(3, 4)
	if err != nil {
		t.Fatal(err)
	}
	want := map[uint64]map[uint64]uint64{}
	done := make(chan struct{})
	go func() { defer close(done); w.produceGiftRounds(want) }()
	kills, last := killUntil(done, startChild)
	defer func() { _ = last.Process.Signal(syscall.SIGKILL); _ = last.Wait() }()
	if kills < 3 {
		t.Fatalf("only %d kills happened; the test did not exercise crashes", kills)
	}
	match := func() string {
		for room, users := range want {
			if got := w.board(room); fmt.Sprint(got) != fmt.Sprint(users) {
				return fmt.Sprintf("room %d: %d users, total %d, want %d users, total %d", room, len(got), total(got), len(users), total(users))
			}
		}
		// The bar: 500 + what room 3 got - what room 4 got, in value units.
		wantA := (500 + int64(total(want[3])) - int64(total(want[4]))) / 10
		if got, err := w.b.PK(ctxT(t), pk.PKID); err != nil || got.Winner != 0 || got.ScoreA != wantA {
			return fmt.Sprintf("PK %+v (%v), want score_a %d and no winner", got, err, wantA)
		}
		return ""
	}
	deadline := time.Now().Add(60 * time.Second)
	for m := match(); m != ""; m = match() {
		if time.Now().After(deadline) {
			t.Fatalf("after %d kills the rankings or the PK differ from the model: %s", kills, m)
		}
		time.Sleep(50 * time.Millisecond) // polling interval, not synchronisation
	}
	got, _ := w.b.PK(ctxT(t), pk.PKID)
	t.Logf("%d kills; rankings and PK bar (%d:%d) exact", kills, got.ScoreA, got.ScoreB)
}

// killUntil starts a child, SIGKILLs it after 100–500 ms and starts the
// next, until done is closed; it returns the kills and the child then
// running, left up to catch up.
func killUntil(done <-chan struct{}, start func() *exec.Cmd) (int, *exec.Cmd) {
	rng := rand.New(rand.NewPCG(7, 8))
	for kills := 0; ; kills++ {
		cmd := start()
		select {
		case <-done:
			return kills, cmd
		case <-time.After(time.Duration(100+rng.IntN(400)) * time.Millisecond):
			_ = cmd.Process.Signal(syscall.SIGKILL)
			_ = cmd.Wait()
		}
	}
}

// produceGiftRounds produces 60 rounds of 100 gifts: rooms 1 and 2 get
// random gifts, rooms 3 and 4 pairs (see below); a third carry client ids
// and a quarter of those are sent again the next round (client retries).
// want gets every original gift's value per room and user.
func (w *world) produceGiftRounds(want map[uint64]map[uint64]uint64) {
	rng := rand.New(rand.NewPCG(5, 6))
	var retries []ingest.Event
	for round := range 60 {
		evs := retries
		retries = nil
		add := func(i int, room, user, value uint64) {
			ev := ingest.Event{Type: ingest.TypeGift, UserID: user, RoomID: room, AnchorID: 8, GiftID: 1, Value: value, TS: time.Now().UnixMilli()}
			if rng.IntN(3) == 0 {
				ev.EventID = fmt.Sprintf("c%d-%d", round, i)
				if rng.IntN(4) == 0 {
					retries = append(retries, ev) // sent again next round
				}
			}
			if want[ev.RoomID] == nil {
				want[ev.RoomID] = map[uint64]uint64{}
			}
			want[ev.RoomID][ev.UserID] += ev.Value
			evs = append(evs, ev)
		}
		for i := range 80 {
			add(i, uint64(1+rng.IntN(2)), uint64(1+rng.IntN(40)), uint64(1+rng.IntN(100)))
		}
		// Rooms 3 and 4 are in a PK: gifts come in pairs from one user
		// (adjacent records), equal but for one pair a round that gives
		// room 3 one more, so the bar creeps toward room 3 and never
		// nears 0 or 100.
		for k := range 10 {
			user, value := uint64(1+rng.IntN(40)), uint64(1+rng.IntN(100))
			add(80+2*k, 3, user, value+uint64(min(k, 1)^1))
			add(81+2*k, 4, user, value)
		}
		if err := w.prod.Produce(context.Background(), evs); err != nil {
			w.t.Error(err)
			return
		}
		time.Sleep(25 * time.Millisecond) // pacing the producer, not synchronisation
	}
}

// TestBoardAggregatorChild is not a test: it is the body of the child
// process the kill test starts (and SIGKILLs). It runs only under
// testenv.StartChild.
func TestBoardAggregatorChild(t *testing.T) {
	cw := testenv.ChildWorldOf(t)
	rdb := redis.NewClient(&redis.Options{Addr: cw.Redis})
	ch, err := chdb.Open(chdb.Config{Addr: cw.ClickHouse})
	if err != nil {
		t.Fatal(err)
	}
	kcl, err := kgo.NewClient(kgo.SeedBrokers(cw.Brokers...), kgo.RequiredAcks(kgo.AllISRAcks()))
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(Config{Redis: rdb, Prefix: cw.Prefix, Kafka: kcl})
	if err != nil {
		t.Fatal(err)
	}
	cfg := aggregatorConfig(t, cw.Brokers, rdb, cw.Prefix, ch, cw.Database, b)
	cfg.InstanceID = "board-kill-test-child"
	cfg.ClickHouseFlush = time.Duration(50+os.Getpid()%100) * time.Millisecond
	cfg.ProgressFlush = time.Duration(100+os.Getpid()%500) * time.Millisecond
	a, err := aggregate.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Run(context.Background()); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
}
