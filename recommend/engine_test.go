package recommend

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/onair/onair/ingest"
	"github.com/onair/onair/internal/testenv"
)

func startEngine(t *testing.T, cfg Config) *Engine {
	t.Helper()
	cfg.Registerer = prometheus.NewRegistry()
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := e.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := e.Stop(ctx); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return e
}

// TestEngineCatalogStream runs two engines on one Kafka, Redis and
// ClickHouse: a node started after the changes has them all when Start
// returns (restart loses nothing), both serve the same playlist, an item
// taken offline leaves both within 2 s, a listener's skip leaves their
// playlist within 2 s, the topic is compacted and onair.catalog holds the
// latest version of every item.
func TestEngineCatalogStream(t *testing.T) {
	t.Parallel()
	k := testenv.Kafka(t, 4)
	rdb, prefix := testenv.Redis(t)
	ch, db := testenv.ClickHouse(t)
	cfg := Config{Brokers: k.Addrs(), Partitions: 4, Redis: rdb, Prefix: prefix, ClickHouse: ch, Database: db, Group: "g-" + db}
	e1 := startEngine(t, cfg)
	ctx := context.Background()
	if err := e1.PutItems(ctx, DemoCatalog()); err != nil {
		t.Fatal(err)
	}
	for _, st := range DemoStations() {
		if err := e1.PutStation(ctx, &st); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Wait(t, 10*time.Second, func() bool { return len(e1.Stations()) == 2 && e1.actors.snap.Load().Len() == 240 },
		"node 1 never applied its own changes")

	e2 := startEngine(t, cfg)
	if n, s := e2.actors.snap.Load().Len(), len(e2.Stations()); n != 240 || s != 2 {
		t.Fatalf("a node started after the changes has %d items and %d stations when Start returns, want 240 and 2", n, s)
	}
	const listener = 42
	now := time.Now()
	p1, err := e1.Playlist(ctx, 1, listener, now, 20)
	if err != nil {
		t.Fatal(err)
	}
	p2, _ := e2.Playlist(ctx, 1, listener, now, 20)
	if len(p1.Items) == 0 || !slices.Equal(ids(p1.Items), ids(p2.Items)) {
		t.Fatalf("the two nodes disagree: %v vs %v", ids(p1.Items), ids(p2.Items))
	}

	// Offline: gone from both nodes' playlists within 2 s.
	top := p1.Items[0].ItemID
	it, _ := e1.Item(top)
	off := *it
	off.Status = StatusOffline
	t0 := time.Now()
	if err := e1.PutItems(ctx, []Item{off}); err != nil {
		t.Fatal(err)
	}
	for _, e := range []*Engine{e1, e2} {
		testenv.Wait(t, 2*time.Second-time.Since(t0), func() bool { return !playlistHas(t, e, listener, top) },
			"item %d still in a playlist 2 s after it went offline", top)
	}
	t.Logf("offline item gone from both nodes after %s", time.Since(t0))

	// A skip: gone from the listener's next playlist within 2 s.
	p1, _ = e1.Playlist(ctx, 1, listener, time.Now(), 20)
	skipped := p1.Items[0].ItemID
	sit, _ := e1.Item(skipped)
	produceEvent(t, k.Addrs(), ingest.Event{Type: ingest.TypeSkip, UserID: listener, Biz: bizOf(t, sit.Biz), ItemID: skipped, StationID: 1, TS: time.Now().UnixMilli(), EventID: "s1"})
	t0 = time.Now()
	testenv.Wait(t, 2*time.Second, func() bool { return !playlistHas(t, e2, listener, skipped) },
		"skipped item %d still in the listener's playlist after 2 s", skipped)
	t.Logf("skip applied after %s", time.Since(t0))
	if !playlistHas(t, e2, listener+1, skipped) {
		t.Fatalf("another listener lost item %d too", skipped)
	}

	// The topic is compacted.
	adm := kadm.NewClient(e1.producer)
	rc, err := adm.DescribeTopicConfigs(ctx, "catalog")
	if err != nil {
		t.Fatal(err)
	}
	if v, err := rc.On("catalog", nil); err != nil || !hasConfig(v.Configs, "cleanup.policy", "compact") {
		t.Fatalf("catalog topic configs %v (%v): not compacted", v.Configs, err)
	}

	// onair.catalog: every item once (FINAL), the latest version of each.
	testenv.Wait(t, 20*time.Second, func() bool {
		var n uint64
		var status string
		q := fmt.Sprintf("SELECT (SELECT count() FROM %[1]s.catalog FINAL), (SELECT toString(argMax(status, version)) FROM %[1]s.catalog WHERE item_id = %[2]d)", db, top)
		if err := ch.QueryRow(ctx, q).Scan(&n, &status); err != nil {
			t.Logf("catalog query: %v", err)
			return false
		}
		return n == 240 && status == "offline"
	}, "onair.catalog never held 240 items with item %d offline", top)
}

func playlistHas(t *testing.T, e *Engine, listener, item uint64) bool {
	t.Helper()
	r, err := e.Playlist(context.Background(), 1, listener, time.Now(), 100)
	if err != nil {
		t.Fatal(err)
	}
	return slices.Contains(ids(r.Items), item)
}

func bizOf(t *testing.T, s string) ingest.Biz {
	b, ok := ingest.ParseBiz(s)
	if !ok {
		t.Fatalf("biz %q", s)
	}
	return b
}

func produceEvent(t *testing.T, brokers []string, ev ingest.Event) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	rec := &kgo.Record{Topic: "events", Key: ingest.RecordKey(ev.UserID), Value: ingest.AppendRecord(nil, &ev)}
	if err := cl.ProduceSync(context.Background(), rec).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

func hasConfig(cs []kadm.Config, key, value string) bool {
	for _, c := range cs {
		if c.Key == key && c.Value != nil && *c.Value == value {
			return true
		}
	}
	return false
}

// TestAffinityRollup: when the analytics rollup user_affinity exists, a
// listener served by the node gets personal slots by its tastes there,
// loaded in the background (the table's shape as docs/analytics.md gives it).
func TestAffinityRollup(t *testing.T) {
	t.Parallel()
	k := testenv.Kafka(t, 2)
	rdb, prefix := testenv.Redis(t)
	ch, db := testenv.ClickHouse(t)
	ctx := context.Background()
	if err := ch.Exec(ctx, "CREATE TABLE IF NOT EXISTS "+db+`.user_affinity (user_id UInt64, kind Enum8('tag' = 1, 'category' = 2),
		key String, day Date, plays UInt64, listened_ms UInt64, skips UInt64) ENGINE = SummingMergeTree ORDER BY (user_id, kind, key, day)`); err != nil {
		t.Fatal(err)
	}
	const listener = 77
	if err := ch.Exec(ctx, "INSERT INTO "+db+".user_affinity SELECT 77, 'tag', 'jazz', today(), 40, 0, 0 UNION ALL SELECT 77, 'tag', 'pop', today(), 0, 0, 9"); err != nil {
		t.Fatal(err)
	}
	e := startEngine(t, Config{Brokers: k.Addrs(), Partitions: 2, Redis: rdb, Prefix: prefix, ClickHouse: ch, Database: db,
		Group: "g-" + db, AffinityEvery: 100 * time.Millisecond})
	if err := e.PutItems(ctx, DemoCatalog()); err != nil {
		t.Fatal(err)
	}
	st := DemoStations()[0]
	if err := e.PutStation(ctx, &st); err != nil {
		t.Fatal(err)
	}
	testenv.Wait(t, 10*time.Second, func() bool {
		r, err := e.Playlist(ctx, 1, listener, time.Now(), 40)
		if err != nil {
			return false // the station is not read back yet
		}
		for _, it := range r.Items {
			if it.Reason == "personal: affinity tag:jazz" {
				return true
			}
		}
		return false
	}, "no personal slot chosen by the rollup's jazz affinity")
}
