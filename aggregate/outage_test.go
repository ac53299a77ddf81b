package aggregate

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/redis/go-redis/v9"

	"github.com/onair/onair/api"
	"github.com/onair/onair/ingest"
	"github.com/onair/onair/internal/apitest"
	"github.com/onair/onair/internal/chdb"
	"github.com/onair/onair/internal/migrate"
	"github.com/onair/onair/internal/testenv"
)

// TestSinkOutagesPauseAndCatchUp stops clickhouse-server, then
// redis-server, while events keep arriving; after each restart the
// aggregator catches up and the result is exact. During the ClickHouse
// outage the events come through the HTTP API (which keeps answering 202),
// and the test checks what the outage does meanwhile: INSERTs fail
// (counted), fetching pauses (no event is taken in from Kafka over two
// more retries although the API keeps adding to it), and the rows held for
// ClickHouse stay within their bound although more events arrive than it.
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
	reg := prometheus.NewRegistry()
	cfg := h.config()
	cfg.Registerer, cfg.BatchRows, cfg.MaxPollRecords = reg, 100, 100
	agg, _ := h.startAgg(cfg)
	bound := maxBufferedBatches*cfg.BatchRows + cfg.MaxPollRecords

	x := newExpectation()
	base := time.Now().Add(-time.Hour).UnixMilli()
	round := 0
	next := func() []ingest.Event {
		evs := gen(rand.New(rand.NewPCG(uint64(round), 3)), 200, 20, 10, base+int64(round)*1000)
		round++
		return evs
	}
	send := func() {
		evs := next()
		h.produce(evs...) // ingest keeps accepting whatever the sinks do
		for _, e := range evs {
			x.add(e)
		}
	}
	post := newPoster(t, h)
	sendHTTP := func() {
		evs := next()
		post.events(evs)
		for _, e := range evs {
			x.add(e)
		}
	}
	caughtUp := func(what string) {
		testenv.Wait(t, 60*time.Second, func() bool { return h.totalEvents() >= uint64(len(x.ids)) },
			"%s: ClickHouse to hold %d events (has %d)", what, len(x.ids), h.totalEvents())
	}
	// maxBuffered samples the rows held for ClickHouse at every poll.
	maxBuffered := 0
	wait := func(what string, cond func() bool) {
		t.Helper()
		testenv.Wait(t, 30*time.Second, func() bool {
			agg.mu.Lock()
			maxBuffered = max(maxBuffered, agg.buffered())
			agg.mu.Unlock()
			return cond()
		}, "%s", what)
	}
	ctx := context.Background()

	send()
	caughtUp("before outages")
	if err := cs.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	sendHTTP()
	wait("an INSERT to fail and fetching to pause", func() bool {
		return metricSum(t, reg, "onair_aggregate_sink_errors_total", "sink", "clickhouse") > 0 &&
			metricSum(t, reg, "onair_aggregate_flush_retries_total", "", "") > 0
	})
	// A fetch already in flight when fetching paused may still land: one
	// more retry lets it, so what follows counts only fetches after the pause.
	retries := metricSum(t, reg, "onair_aggregate_flush_retries_total", "", "")
	wait("one more retry", func() bool {
		return metricSum(t, reg, "onair_aggregate_flush_retries_total", "", "") >= retries+1
	})
	taken := metricSum(t, reg, "onair_aggregate_events_total", "", "")
	retries = metricSum(t, reg, "onair_aggregate_flush_retries_total", "", "")
	posted := 200
	for posted <= bound {
		sendHTTP()
		posted += 200
	}
	// Two more retries ran, each after polling Kafka, which holds events
	// not taken in yet: with fetching paused, none is taken in.
	wait("two more retries", func() bool {
		return metricSum(t, reg, "onair_aggregate_flush_retries_total", "", "") >= retries+2
	})
	if now := metricSum(t, reg, "onair_aggregate_events_total", "", ""); now != taken {
		t.Fatalf("fetching did not pause: %v events taken in from Kafka during the outage, then %v", taken, now)
	}
	if maxBuffered > bound {
		t.Fatalf("%d rows held for ClickHouse during the outage, over the bound of %d", maxBuffered, bound)
	}
	t.Logf("ClickHouse outage: %d events posted, %v taken in, at most %d rows held (bound %d), %v INSERTs failed",
		posted, taken, maxBuffered, bound, metricSum(t, reg, "onair_aggregate_sink_errors_total", "sink", "clickhouse"))
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

// poster posts events through an HTTP API in front of the harness's Kafka,
// with a service token (events for any user).
type poster struct {
	t      *testing.T
	url    string
	tok    string
	client *http.Client
	ids    int // event ids given so far
}

func newPoster(t *testing.T, h *harness) *poster {
	secret := []byte("outage-test-secret-0123456789abc")
	srv, err := api.New(api.Config{AuthSecret: secret, Producer: h.prod})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	tok, err := api.SignToken(secret, 1, api.RoleService, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return &poster{t: t, url: ts.URL, tok: tok, client: apitest.New(t).Client(ts.Client())}
}

// events posts evs as one batch and requires a 202. Events without an id
// get one, so the test knows every id.
func (p *poster) events(evs []ingest.Event) {
	p.t.Helper()
	batch := make([]map[string]any, len(evs))
	for i := range evs {
		e := &evs[i]
		if e.EventID == "" {
			p.ids++
			e.EventID = "http-" + strconv.Itoa(p.ids)
		}
		m := map[string]any{"type": e.Type.String(), "ts": e.TS, "event_id": e.EventID, "user_id": e.UserID, "device": e.Device}
		switch e.Type {
		case ingest.TypeGift:
			m["room_id"], m["anchor_id"], m["gift_id"], m["value"] = e.RoomID, e.AnchorID, e.GiftID, e.Value
		default:
			m["biz"], m["item_id"] = e.Biz.String(), e.ItemID
		}
		switch e.Type {
		case ingest.TypeProgress:
			m["position_ms"], m["duration_ms"] = e.PositionMs, e.DurationMs
		case ingest.TypePlay:
			m["listened_ms"], m["station_id"] = e.ListenedMs, e.StationID
		}
		batch[i] = m
	}
	body, err := json.Marshal(map[string]any{"events": batch})
	if err != nil {
		p.t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, p.url+"/v1/events", strings.NewReader(string(body)))
	req.Header.Set("Authorization", "Bearer "+p.tok)
	resp, err := p.client.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		p.t.Fatalf("POST /v1/events during the outage: %d, want 202", resp.StatusCode)
	}
}

// metricSum adds up the samples of a counter in reg, only those whose
// label has value when label is not "".
func metricSum(t testing.TB, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if label == "" || hasLabel(m, label, value) {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

func hasLabel(m *dto.Metric, name, value string) bool {
	for _, l := range m.GetLabel() {
		if l.GetName() == name && l.GetValue() == value {
			return true
		}
	}
	return false
}
