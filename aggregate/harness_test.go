package aggregate

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/onair/onair/history"
	"github.com/onair/onair/ingest"
	"github.com/onair/onair/internal/chdb"
	"github.com/onair/onair/internal/kafka"
	"github.com/onair/onair/internal/testenv"
)

// harness is one test's isolated world: its own kfake cluster, Redis key
// prefix and ClickHouse database.
type harness struct {
	t       testing.TB
	brokers []string
	kf      *kafka.Embedded
	rdb     redis.UniversalClient
	prefix  string
	ch      driver.Conn
	db      string
	hist    *history.Store
	prod    *ingest.Producer
	// byContent lists the server-assigned ids of the events produced, by
	// contentKey (see eventCounts).
	byContent map[string][]string
}

func newHarness(t testing.TB, partitions int) *harness {
	t.Helper()
	h := &harness{t: t}
	h.kf = testenv.Kafka(t, partitions)
	h.brokers = h.kf.Addrs()
	h.rdb, h.prefix = testenv.Redis(t)
	h.ch, h.db = testenv.ClickHouse(t)
	h.hist = h.newHistory(h.rdb, h.ch)
	cl, err := kgo.NewClient(kgo.SeedBrokers(h.brokers...), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(time.Millisecond), kgo.RecordDeliveryTimeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	ids, err := ingest.NewIDGen(1)
	if err != nil {
		t.Fatal(err)
	}
	if h.prod, err = ingest.NewProducer(ingest.ProducerConfig{Client: cl, IDs: ids}); err != nil {
		t.Fatal(err)
	}
	return h
}

func (h *harness) newHistory(rdb redis.UniversalClient, ch driver.Conn) *history.Store {
	hs, err := history.New(history.Config{Redis: rdb, Prefix: h.prefix, ClickHouse: ch, Database: h.db})
	if err != nil {
		h.t.Fatal(err)
	}
	return hs
}

func (h *harness) config() Config {
	return Config{
		Brokers: h.brokers, History: h.hist, Redis: h.rdb, Prefix: h.prefix,
		ClickHouse: h.ch, Database: h.db, RedisFlush: 20 * time.Millisecond, ClickHouseFlush: 100 * time.Millisecond,
		ProgressFlush: 300 * time.Millisecond, RetryBackoff: 20 * time.Millisecond,
	}
}

// start runs an aggregator until the returned stop is called (or the test ends).
func (h *harness) start(cfg Config) (stop func()) {
	h.t.Helper()
	_, stop = h.startAgg(cfg)
	return stop
}

// startAgg is start, also returning the aggregator.
func (h *harness) startAgg(cfg Config) (a *Aggregator, stop func()) {
	h.t.Helper()
	a, err := New(cfg)
	if err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			h.t.Errorf("aggregator stopped with error: %v", err)
		}
	}
	h.t.Cleanup(stop)
	return a, stop
}

func (h *harness) produce(evs ...ingest.Event) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := h.prod.Produce(ctx, evs); err != nil {
		h.t.Fatalf("produce %d events: %v", len(evs), err)
	}
	if h.byContent == nil {
		h.byContent = map[string][]string{}
	}
	for i := range evs {
		if evs[i].ServerID {
			k := contentKey(&evs[i])
			h.byContent[k] = append(h.byContent[k], evs[i].EventID)
		}
	}
}

// contentKey is every stored field of e but its id.
func contentKey(e *ingest.Event) string {
	return fmt.Sprintf("%s/%d/%s/%d/%d/%d/%d/%d/%d/%d/%d/%d/%d/%q/%q", e.Type, e.UserID, e.Biz, e.ItemID, e.TS, e.PositionMs,
		e.DurationMs, e.ListenedMs, e.StationID, e.RoomID, e.AnchorID, e.GiftID, e.Value, e.Device, e.Text)
}

// eventCounts returns how many rows onair.events holds per event_id. A
// server-assigned id is not stored (0040_compact_events), so rows without
// one are named by their content: the ids produced with that content
// count one row each, in order, and rows beyond them count on the first.
func (h *harness) eventCounts() map[string]uint64 {
	h.t.Helper()
	rows, err := h.ch.Query(context.Background(), "SELECT event_id, toString(type), user_id, toString(biz), item_id, ts_ms, position_ms, duration_ms, "+
		"listened_ms, station_id, room_id, anchor_id, gift_id, value, device, text, count() FROM "+h.db+".events "+
		"GROUP BY event_id, type, user_id, biz, item_id, ts_ms, position_ms, duration_ms, listened_ms, station_id, room_id, anchor_id, gift_id, value, device, text")
	if err != nil {
		h.t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]uint64{}
	for rows.Next() {
		var id, typ, biz string
		var e ingest.Event
		var tsMs, n uint64
		if err := rows.Scan(&id, &typ, &e.UserID, &biz, &e.ItemID, &tsMs, &e.PositionMs, &e.DurationMs, &e.ListenedMs,
			&e.StationID, &e.RoomID, &e.AnchorID, &e.GiftID, &e.Value, &e.Device, &e.Text, &n); err != nil {
			h.t.Fatal(err)
		}
		if id != "" {
			out[id] += n
			continue
		}
		e.Type, _ = ingest.ParseType(typ)
		e.Biz, _ = ingest.ParseBiz(biz)
		e.TS = int64(tsMs)
		ids := h.byContent[contentKey(&e)]
		if len(ids) == 0 {
			out[fmt.Sprintf("(no id: %s)", contentKey(&e))] += n
			continue
		}
		for i := 0; n > 0; i = min(i+1, len(ids)-1) {
			out[ids[i]]++
			n--
		}
	}
	return out
}

func (h *harness) totalEvents() uint64 {
	var n uint64
	if err := h.ch.QueryRow(context.Background(), "SELECT count() FROM "+h.db+".events").Scan(&n); err != nil {
		h.t.Logf("count events: %v", err)
		return 0
	}
	return n
}

// chProgress returns onair.progress as of now (FINAL), keyed "user/biz:item".
func (h *harness) chProgress() map[string]uint64 {
	h.t.Helper()
	rows, err := h.ch.Query(context.Background(), "SELECT user_id, toString(biz), item_id, position_ms FROM "+h.db+".progress FINAL")
	if err != nil {
		h.t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]uint64{}
	for rows.Next() {
		var u, item, pos uint64
		var biz string
		if err := rows.Scan(&u, &biz, &item, &pos); err != nil {
			h.t.Fatal(err)
		}
		out[fmt.Sprintf("%d/%s:%d", u, biz, item)] = pos
	}
	return out
}

// expectation is the in-test model: every event id once, and per entry the
// position of the newest report with a non-zero position.
type expectation struct {
	ids  map[string]bool
	pos  map[string]report
	user map[string]uint64
}

func newExpectation() *expectation {
	return &expectation{ids: map[string]bool{}, pos: map[string]report{}, user: map[string]uint64{}}
}

func (x *expectation) add(e ingest.Event) {
	x.ids[e.EventID] = true
	if e.Type != ingest.TypeProgress || e.PositionMs == 0 {
		return
	}
	k := fmt.Sprintf("%d/%s:%d", e.UserID, e.Biz, e.ItemID)
	r := reportOf(&e)
	if cur, ok := x.pos[k]; !ok || posBeats(r, cur) {
		x.pos[k] = r
	}
	x.user[k] = e.UserID
}

// check asserts ClickHouse holds every expected event exactly once and that
// Redis and ClickHouse agree with the model on every resume position.
func (h *harness) check(x *expectation) {
	h.t.Helper()
	counts := h.eventCounts()
	var missing, dup []string
	for id := range x.ids {
		switch n := counts[id]; {
		case n == 0:
			missing = append(missing, id)
		case n > 1:
			dup = append(dup, fmt.Sprintf("%s×%d", id, n))
		}
	}
	for id := range counts {
		if !x.ids[id] {
			h.t.Errorf("phantom event %q in ClickHouse", id)
		}
	}
	if len(missing)+len(dup) > 0 {
		h.t.Fatalf("%d events expected: %d missing %v, %d duplicated %v", len(x.ids), len(missing), head(missing), len(dup), head(dup))
	}
	// onair.progress rows are held up to ProgressFlush: poll for them.
	deadline := time.Now().Add(20 * time.Second)
	for {
		mismatch := h.progressMismatch(x)
		if mismatch == "" {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("progress does not match the model after 20 s: %s", mismatch)
		}
		time.Sleep(50 * time.Millisecond) // polling interval, not synchronisation
	}
}

// progressMismatch compares Redis and ClickHouse resume positions with the
// model and describes the first difference, or returns "".
func (h *harness) progressMismatch(x *expectation) string {
	chp := h.chProgress()
	for k, want := range x.pos {
		if got := chp[k]; got != want.positionMs {
			return fmt.Sprintf("ClickHouse progress %s = %d, want %d", k, got, want.positionMs)
		}
		ik, err := history.ParseItemKey(k[strings.IndexByte(k, '/')+1:])
		if err != nil {
			h.t.Fatal(err)
		}
		got, err := h.hist.Progress(context.Background(), x.user[k], []history.ItemKey{ik})
		if err != nil {
			return err.Error()
		}
		if got[ik].PositionMs != want.positionMs {
			return fmt.Sprintf("Redis progress %s = %d, want %d", k, got[ik].PositionMs, want.positionMs)
		}
	}
	return ""
}

func head(s []string) []string {
	if len(s) > 10 {
		return s[:10]
	}
	return s
}

// startChild starts an aggregator in a child process (TestAggregatorChild)
// on h's world, for a test to SIGKILL at any instant.
func (h *harness) startChild() *exec.Cmd {
	h.t.Helper()
	return testenv.StartChild(h.t, "TestAggregatorChild", h.childWorld(""))
}

// childWorld is h's world for a child aggregator playing mode.
func (h *harness) childWorld(mode string) testenv.ChildWorld {
	return testenv.ChildWorld{Brokers: h.brokers, Redis: testenv.RedisAddr(h.t), Prefix: h.prefix,
		ClickHouse: testenv.ClickHouseAddr(h.t), Database: h.db, Mode: mode}
}

// TestAggregatorChild is not a test: it is the body of the child process the
// kill test starts (and SIGKILLs). It runs only under testenv.StartChild.
func TestAggregatorChild(t *testing.T) {
	w := testenv.ChildWorldOf(t)
	rdb := redis.NewClient(&redis.Options{Addr: w.Redis})
	ch, err := chdb.Open(chdb.Config{Addr: w.ClickHouse})
	if err != nil {
		t.Fatal(err)
	}
	hs, err := history.New(history.Config{Redis: rdb, Prefix: w.Prefix, ClickHouse: ch, Database: w.Database})
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Brokers: w.Brokers, InstanceID: "kill-test-child", History: hs, Redis: rdb, Prefix: w.Prefix, ClickHouse: ch, Database: w.Database,
		RedisFlush: 20 * time.Millisecond, ClickHouseFlush: time.Duration(50+os.Getpid()%100) * time.Millisecond,
		ProgressFlush: time.Duration(100+os.Getpid()%500) * time.Millisecond}
	if w.Mode == crasherMode {
		// the rebalance test's member that crashes: it holds every
		// ClickHouse row it fetched (it never flushes before its SIGKILL),
		// and the group notices its silence within a short session
		cfg.InstanceID, cfg.SessionTimeout = crasherID, 6*time.Second // the broker's minimum
		cfg.ClickHouseFlush, cfg.ProgressFlush = time.Hour, time.Hour
	}
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Run(context.Background()); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
}
