package aggregate

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/onair/onair/internal/chdb"
	"github.com/onair/onair/internal/migrate"
	"github.com/onair/onair/internal/testenv"
)

// TestSinkOutagesPauseAndCatchUp stops clickhouse-server, then redis-server,
// while events keep arriving; after each restart the aggregator catches up
// and the result is exact.
func TestSinkOutagesPauseAndCatchUp(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 4)
	// Private servers this test may stop.
	rs, cs := testenv.PrivateRedis(t), testenv.PrivateClickHouse(t)
	h.rdb = redis.NewClient(&redis.Options{Addr: rs.Addr(), MaxRetries: -1})
	t.Cleanup(func() { h.rdb.Close() })
	ch, err := chdb.Open(chdb.Config{Addr: cs.Addr()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ch.Close() })
	h.ch, h.db = ch, "onair"
	if _, err := migrate.Apply(context.Background(), ch, h.db, nil); err != nil {
		t.Fatal(err)
	}
	h.hist = h.newHistory(h.rdb, h.ch)
	h.start(h.config())

	x := newExpectation()
	base := time.Now().Add(-time.Hour).UnixMilli()
	round := 0
	send := func() {
		evs := gen(rand.New(rand.NewPCG(uint64(round), 3)), 200, 20, 10, base+int64(round)*1000)
		round++
		h.produce(evs...) // ingest keeps accepting whatever the sinks do
		for _, e := range evs {
			x.add(e)
		}
	}
	caughtUp := func(what string) {
		testenv.Wait(t, 60*time.Second, func() bool { return h.totalEvents() >= uint64(len(x.ids)) },
			"%s: ClickHouse to hold %d events (has %d)", what, len(x.ids), h.totalEvents())
	}
	ctx := context.Background()

	send()
	caughtUp("before outages")
	if err := cs.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	send()
	send()
	if err := cs.Start(ctx); err != nil {
		t.Fatal(err)
	}
	caughtUp("after ClickHouse outage")

	if err := rs.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	send()
	send()
	if err := rs.Start(ctx); err != nil {
		t.Fatal(err)
	}
	caughtUp("after Redis outage")
	h.check(x)
}
