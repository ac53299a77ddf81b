package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/onair/onair/ingest"
	"github.com/onair/onair/internal/kafka"
	"github.com/onair/onair/internal/testenv"
)

// served is `onair serve` running in-process, as main runs it.
type served struct {
	url    string
	secret []byte
	log    *syncBuffer
	// the node's Redis key prefix and ClickHouse database: another node
	// joins the same deployment with --redis-prefix and
	// --clickhouse-database (later flags win)
	prefix, db string
}

// startServe runs `onair serve --roles api` in a goroutine against brokers,
// the shared test Redis (a key prefix of its own) and ClickHouse (a database
// of its own). At cleanup it cancels the context, as SIGTERM does, and fails
// the test unless run returns 0 within 30 s.
func startServe(t *testing.T, brokers []string, extra ...string) *served {
	t.Helper()
	_, prefix := testenv.Redis(t)
	_, db := testenv.ClickHouse(t)
	secret := "serve-test-secret"
	args := append([]string{"serve", "--roles", "api", "--http-addr", "127.0.0.1:0", "--ops-addr", "127.0.0.1:0",
		"--kafka-brokers", strings.Join(brokers, ","),
		"--redis-addrs", testenv.RedisAddr(t), "--redis-prefix", prefix,
		"--clickhouse-addr", testenv.ClickHouseAddr(t), "--clickhouse-database", db,
		"--postgres-dsn", testenv.PostgresDSN(t), "--payment-provider", "dev",
		"--auth-secret", secret, "--rate-limit", "0", "--event-rate", "0", "--service-event-rate", "0", "--log-level", "info"}, extra...)
	s := &served{secret: []byte(secret), log: &syncBuffer{}, prefix: prefix, db: db}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() { done <- run(ctx, args, io.Discard, s.log) }()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("onair serve exited with status %d after its context ended; log:\n%s", code, s.log.tail())
			}
		case <-time.After(30 * time.Second):
			t.Errorf("onair serve did not stop within 30 s of its context ending; log:\n%s", s.log.tail())
		}
	})
	// serve prints nothing on stdout; its address is in the "onair
	// serving" log line.
	addrRe := regexp.MustCompile(`msg="onair serving".* http=(\S+)`)
	var addr string
	testenv.Wait(t, 60*time.Second, func() bool {
		select {
		case code := <-done:
			done <- code
			t.Fatalf("onair serve exited with status %d before serving; log:\n%s", code, s.log.tail())
		default:
		}
		if m := addrRe.FindStringSubmatch(s.log.String()); m != nil {
			addr = m[1]
		}
		return addr != ""
	}, "onair serve to log its address; log:\n%s", s.log)
	s.url = "http://" + addr
	return s
}

func (s *served) token(t testing.TB, user uint64, role string) string {
	return testenv.SignToken(t, s.secret, user, role)
}

// TestServeEventsKeyedByUser: every 202'd event — single progress reports,
// batches, events a service posts for other users, events without an id —
// is in Kafka once, keyed by its user id, decoding to what was posted; a
// 403'd event is not.
func TestServeEventsKeyedByUser(t *testing.T) {
	t.Parallel()
	kf := testenv.Kafka(t, 4)
	s := startServe(t, kf.Addrs())

	var (
		mu   sync.Mutex
		want = map[string]ingest.Event{}
		wg   sync.WaitGroup
	)
	now := time.Now().UnixMilli()
	for _, u := range []uint64{101, 102, 103, 104} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok := s.token(t, u, "")
			add := func(es ...apiEvent) {
				mu.Lock()
				for _, e := range es {
					want[e.EventID] = e.event(u)
				}
				mu.Unlock()
			}
			for i := range 5 {
				e := apiEvent{Biz: "video", ItemID: 10 + uint64(i), PositionMs: 100 * uint64(i+1), DurationMs: 90_000,
					TS: now + int64(i), Device: "android-" + fmt.Sprint(u), EventID: fmt.Sprintf("p-%d-%d", u, i)}
				postOK(t, s.url+"/v1/progress", tok, e)
				add(e)
			}
			for b := range 2 {
				batch := []apiEvent{
					{Type: "play", Biz: "audio", ItemID: 5, ListenedMs: 1234, TS: now, EventID: fmt.Sprintf("b-%d-%d-0", u, b)},
					{Type: "skip", Biz: "radio", ItemID: 6, StationID: 9, TS: now, EventID: fmt.Sprintf("b-%d-%d-1", u, b)},
					{Type: "like", Biz: "video", ItemID: 7, TS: now, EventID: fmt.Sprintf("b-%d-%d-2", u, b)},
				}
				if got := postOK(t, s.url+"/v1/events", tok, map[string]any{"events": batch}); !strings.Contains(got, `"accepted":3`) {
					t.Errorf("batch reply %s, want accepted 3", got)
				}
				add(batch...)
			}
		}()
	}
	wg.Wait()

	// A trusted backend posts for users who never post themselves.
	svc := s.token(t, 900, "service")
	batch := []apiEvent{
		{Type: "gift", UserID: 201, RoomID: 3, AnchorID: 8, GiftID: 2, Value: 200, TS: now, EventID: "s-201"},
		{Type: "like", UserID: 202, Biz: "comic", ItemID: 44, TS: now, EventID: "s-202"},
	}
	postOK(t, s.url+"/v1/events", svc, map[string]any{"events": batch})
	want["s-201"], want["s-202"] = batch[0].event(201), batch[1].event(202)
	one := apiEvent{UserID: 203, Biz: "article", ItemID: 8, PositionMs: 1, DurationMs: 10, TS: now, EventID: "s-203"}
	postOK(t, s.url+"/v1/progress", svc, one)
	want["s-203"] = one.event(203)

	// Without an event_id the server assigns one; matched here by item id.
	noID := apiEvent{Biz: "live", ItemID: 777_777, PositionMs: 3, TS: now}
	postOK(t, s.url+"/v1/progress", s.token(t, 104, ""), noID)

	// A user token may not post for another user: 403, nothing produced.
	forged := apiEvent{Type: "like", UserID: 102, Biz: "audio", ItemID: 1, TS: now, EventID: "forged"}
	if code, body := do(t, http.MethodPost, s.url+"/v1/events", s.token(t, 101, ""), map[string]any{"events": []apiEvent{forged}}); code != http.StatusForbidden {
		t.Fatalf("user 101 posting for user 102: %d %s, want 403", code, body)
	}

	recs := readTopic(t, kf.Addrs(), kafka.TopicEvents)
	var rest []*kgo.Record
	found := 0
	for _, r := range recs {
		var e ingest.Event
		if err := ingest.DecodeRecord(r.Value, &e); err == nil && e.ItemID == noID.ItemID {
			if !e.ServerID || e.EventID == "" || string(r.Key) != "104" || e.UserID != 104 || e.PositionMs != 3 {
				t.Errorf("event posted without an id: key %q, %+v; want a server-assigned id for user 104", r.Key, e)
			}
			found++
			continue
		}
		rest = append(rest, r)
	}
	if found != 1 {
		t.Errorf("the event posted without an id is in Kafka %d times, want once", found)
	}
	checkRecords(t, rest, want)
}

// TestServeKafkaOutage: while Kafka refuses every request, POST answers 503
// (a JSON error, within the producer's timeout) and /readyz 503 naming
// kafka; once Kafka is back, 202 again. In the topic: every 202'd event
// once, no 503'd event at all.
func TestServeKafkaOutage(t *testing.T) {
	t.Parallel()
	kf := testenv.Kafka(t, 4)
	var down atomic.Bool
	// Every request (produce, metadata, ...) closes the connection while
	// down, as a dead broker would.
	kf.Cluster().Control(func(kmsg.Request) (kmsg.Response, error, bool) {
		kf.Cluster().KeepControl()
		if down.Load() {
			return nil, errors.New("injected outage"), true
		}
		return nil, nil, false
	})
	s := startServe(t, kf.Addrs())
	tok := s.token(t, 55, "")
	var (
		mu       sync.Mutex
		accepted = map[string]ingest.Event{}
		refused  = map[string]bool{}
		seq      atomic.Int64
	)
	// post sends one progress report and files its event id by the answer.
	post := func() (int, string, http.Header, time.Duration) {
		e := apiEvent{Biz: "audio", ItemID: 1, PositionMs: uint64(1000 + seq.Add(1)), TS: time.Now().UnixMilli(),
			EventID: fmt.Sprintf("o-%d", seq.Load())}
		b, _ := json.Marshal(e)
		req, _ := http.NewRequest(http.MethodPost, s.url+"/v1/progress", bytes.NewReader(b))
		req.Header.Set("Authorization", "Bearer "+tok)
		start := time.Now()
		resp, err := httpClient.Do(req)
		if err != nil {
			t.Errorf("POST /v1/progress: %v", err)
			return 0, "", nil, 0
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		took := time.Since(start)
		mu.Lock()
		defer mu.Unlock()
		switch resp.StatusCode {
		case http.StatusAccepted:
			accepted[e.EventID] = e.event(55)
		default:
			refused[e.EventID] = true
		}
		return resp.StatusCode, string(body), resp.Header, took
	}

	for range 5 {
		if code, body, _, _ := post(); code != http.StatusAccepted {
			t.Fatalf("before the outage: %d %s, want 202", code, body)
		}
	}

	down.Store(true)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, body, h, took := post()
			if code != http.StatusServiceUnavailable {
				t.Errorf("during the outage: %d %s, want 503", code, body)
				return
			}
			// The producer gives up after 5 s (ingest.ProducerConfig.Timeout).
			if took > 8*time.Second {
				t.Errorf("during the outage: 503 after %s, want it within the 5 s produce timeout", took)
			}
			var reply struct {
				Error struct{ Code, Message string }
			}
			if err := json.Unmarshal([]byte(body), &reply); err != nil || reply.Error.Code != "unavailable" || reply.Error.Message == "" {
				t.Errorf("during the outage: body %s, want a JSON error with code unavailable", body)
			}
			if h.Get("Retry-After") == "" {
				t.Errorf("during the outage: 503 without Retry-After")
			}
			t.Logf("503 after %s: %s", took.Round(time.Millisecond), strings.TrimSpace(body))
		}()
	}
	wg.Wait()
	code, body := do(t, http.MethodGet, s.url+"/readyz", "", nil)
	if code != http.StatusServiceUnavailable || !strings.Contains(body, `"kafka"`) {
		t.Fatalf("/readyz during the outage: %d %s, want 503 naming kafka", code, body)
	}
	if t.Failed() {
		t.FailNow()
	}

	down.Store(false)
	// The client reconnects on the next request; allow it a few tries, each
	// filed by its answer like the others.
	testenv.Wait(t, 20*time.Second, func() bool { code, _, _, _ := post(); return code == http.StatusAccepted },
		"POST /v1/progress to answer 202 after the outage")
	for range 5 {
		if code, body, _, _ := post(); code != http.StatusAccepted {
			t.Fatalf("after the outage: %d %s, want 202", code, body)
		}
	}
	// /readyz answers from probes up to a second old
	var rcode int
	var rbody string
	testenv.Wait(t, 5*time.Second, func() bool {
		rcode, rbody = do(t, http.MethodGet, s.url+"/readyz", "", nil)
		return rcode == http.StatusOK
	},
		"/readyz after the outage: %d %s, want 200", rcode, rbody)

	// A 503 does not promise that nothing was written: ingest.Producer
	// returns at its timeout while kgo still holds records it already sent
	// once, and the idempotent producer delivers them after the outage
	// (see Producer.Produce: "A failed call may still have written some
	// events"). The client retries with the same event_id and the
	// aggregator counts it once. So a refused event may be in the topic,
	// but at most once; an accepted one exactly once.
	recs := readTopic(t, kf.Addrs(), kafka.TopicEvents)
	var kept []*kgo.Record
	late := map[string]int{}
	for _, r := range recs {
		var e ingest.Event
		if err := ingest.DecodeRecord(r.Value, &e); err != nil {
			t.Fatalf("record %d/%d: %v", r.Partition, r.Offset, err)
		}
		if refused[e.EventID] {
			late[e.EventID]++
			continue
		}
		kept = append(kept, r)
	}
	for id, n := range late {
		if n > 1 {
			t.Errorf("event %s got a 503 and is in Kafka %d times, want at most once", id, n)
		}
	}
	t.Logf("%d events accepted, %d refused, of which %d landed in Kafka after the outage", len(accepted), len(refused), len(late))
	checkRecords(t, kept, accepted)
}

// TestConfigEnvAndFlags: ONAIR_<FLAG> sets a flag's default, the command
// line wins, and a bad role is named in the error.
func TestConfigEnvAndFlags(t *testing.T) {
	t.Setenv("ONAIR_HTTP_ADDR", "127.0.0.1:9999")
	t.Setenv("ONAIR_KAFKA_BROKERS", "k1:9092, k2:9092")
	t.Setenv("ONAIR_RATE_LIMIT", "7")
	t.Setenv("ONAIR_REDIS_FLUSH", "250ms")
	t.Setenv("ONAIR_PPROF", "true")
	t.Setenv("ONAIR_DEV_KAFKA_PORT", "29092")
	parse := func(dev bool, args ...string) config {
		t.Helper()
		var c config
		fs := flag.NewFlagSet("test", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		c.flags(fs, dev)
		if err := fs.Parse(args); err != nil {
			t.Fatalf("parse %v: %v", args, err)
		}
		return c
	}

	c := parse(true)
	if c.HTTPAddr != "127.0.0.1:9999" || strings.Join(c.KafkaBrokers, ",") != "k1:9092,k2:9092" || c.RateLimit != 7 ||
		c.RedisFlush != 250*time.Millisecond || !c.Pprof || c.DevKafkaPort != 29092 {
		t.Fatalf("from the environment: %+v", c)
	}
	// Unset variables keep the built-in defaults, dev's or serve's.
	if strings.Join(c.RedisAddrs, ",") != "127.0.0.1:16379" || c.CHDatabase != "onair" || c.DevRedisPort != 16379 {
		t.Fatalf("dev defaults: %+v", c)
	}
	if c := parse(false); len(c.RedisAddrs) != 0 || c.CHAddr != "" {
		t.Fatalf("serve has no default Redis or ClickHouse: %+v", c)
	}
	// the dev payment provider pays every recharge: onair dev's default only
	if c := parse(false); c.Wallet.Provider != "webhook" {
		t.Fatalf("serve's default payment provider is %q, want webhook (dev would let anyone mint coins)", c.Wallet.Provider)
	}

	c = parse(true, "--http-addr", "127.0.0.1:1", "--kafka-brokers", "k3:1", "--rate-limit", "0",
		"--redis-flush", "1s", "--pprof=false", "--dev-kafka-port", "0")
	if c.HTTPAddr != "127.0.0.1:1" || strings.Join(c.KafkaBrokers, ",") != "k3:1" || c.RateLimit != 0 ||
		c.RedisFlush != time.Second || c.Pprof || c.DevKafkaPort != 0 {
		t.Fatalf("flags must win over the environment: %+v", c)
	}

	c = parse(false, "--roles", "api,pusher", "--redis-addrs", "r:1", "--clickhouse-addr", "c:1")
	if err := c.validate(); err == nil || !strings.Contains(err.Error(), `"pusher"`) {
		t.Fatalf("validate with role pusher: %v, want an error naming it", err)
	}
	t.Setenv("ONAIR_ROLES", "api,aggregate,bogus")
	c = parse(false, "--redis-addrs", "r:1", "--clickhouse-addr", "c:1")
	if err := c.validate(); err == nil || !strings.Contains(err.Error(), `"bogus"`) {
		t.Fatalf("validate with ONAIR_ROLES naming bogus: %v, want an error naming it", err)
	}
	c = parse(false, "--roles", "aggregate,api", "--redis-addrs", "r:1", "--clickhouse-addr", "c:1", "--postgres-dsn", "postgres://p/onair")
	if err := c.validate(); err != nil {
		t.Fatalf("validate with the flag overriding ONAIR_ROLES: %v", err)
	}
	c = parse(false, "--roles", "api", "--redis-addrs", "r:1", "--clickhouse-addr", "c:1")
	if err := c.validate(); err == nil || !strings.Contains(err.Error(), "--postgres-dsn") {
		t.Fatalf("validate of the api role without PostgreSQL: %v, want an error naming --postgres-dsn", err)
	}
	c = parse(false, "--roles", "aggregate", "--redis-addrs", "r:1", "--clickhouse-addr", "c:1")
	if err := c.validate(); err != nil {
		t.Fatalf("validate of the aggregate role without PostgreSQL: %v", err)
	}
	c = parse(false, "--roles", "api", "--redis-addrs", "r:1", "--clickhouse-addr", "c:1", "--history-page-cache", "-1")
	if err := c.validate(); err == nil || !strings.Contains(err.Error(), "--history-page-cache") {
		t.Fatalf("validate with a negative page cache: %v, want an error naming the flag", err)
	}

	// The same through the command, before anything is dialled.
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"serve", "--roles", "api,nope", "--redis-addrs", "r:1", "--clickhouse-addr", "c:1"}, &out, &errb)
	if code == 0 || !strings.Contains(errb.String(), `"nope"`) {
		t.Fatalf("onair serve --roles api,nope: exit %d, stderr %q; want a failure naming nope", code, errb.String())
	}
}

// syncBuffer is a bytes.Buffer safe for a logger writing while a test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// tail returns the last 8 KB.
func (s *syncBuffer) tail() string {
	str := s.String()
	if len(str) > 8<<10 {
		str = str[len(str)-8<<10:]
	}
	return str
}

// TestServeRateLimitFlag: --rate-limit N refuses a user's requests beyond N
// per second with 429, and --rate-limit 0 turns the limit off (it used to
// fall back to the API's default of 200).
func TestServeRateLimitFlag(t *testing.T) {
	t.Parallel()
	kf := testenv.Kafka(t, 1)
	for _, tc := range []struct {
		limit    string
		requests int
		want429  bool
	}{{"3", 20, true}, {"0", 1000, false}} {
		t.Run("limit="+tc.limit, func(t *testing.T) {
			t.Parallel()
			s := startServe(t, kf.Addrs(), "--rate-limit", tc.limit)
			tok := s.token(t, 77, "")
			var (
				mu    sync.Mutex
				codes = map[int]int{}
				wg    sync.WaitGroup
			)
			const workers = 16
			for w := 0; w < workers; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := w; i < tc.requests; i += workers {
						body := fmt.Sprintf(`{"biz":"audio","item_id":1,"position_ms":%d,"ts":%d}`, 1000+i, time.Now().UnixMilli())
						req, _ := http.NewRequest(http.MethodPost, s.url+"/v1/progress", strings.NewReader(body))
						req.Header.Set("Authorization", "Bearer "+tok)
						resp, err := httpClient.Do(req)
						if err != nil {
							t.Errorf("POST /v1/progress: %v", err)
							return
						}
						_, _ = io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						mu.Lock()
						codes[resp.StatusCode]++
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			if got := codes[http.StatusTooManyRequests] > 0; got != tc.want429 {
				t.Fatalf("--rate-limit %s, %d requests at once: status counts %v, want a 429: %v", tc.limit, tc.requests, codes, tc.want429)
			}
			if codes[http.StatusAccepted] == 0 {
				t.Fatalf("no request accepted: %v", codes)
			}
		})
	}
}

// TestServeNodeIDClashRefused: a second API process asking for the node id
// a live one holds is refused at start, naming it; two processes that ask
// for none get different ones (leased from PostgreSQL, where pid mod 1024
// collided in every container).
func TestServeNodeIDClashRefused(t *testing.T) {
	t.Parallel()
	kf := testenv.Kafka(t, 2)
	dsn := testenv.PostgresDSN(t)
	first := startServe(t, kf.Addrs(), "--postgres-dsn", dsn, "--node-id", "5")
	if !strings.Contains(first.log.String(), "node_id=5") {
		t.Fatalf("the first process did not lease node id 5; log:\n%s", first.log.tail())
	}
	var out, errb bytes.Buffer
	args := []string{"serve", "--roles", "api", "--http-addr", "127.0.0.1:0", "--kafka-brokers", strings.Join(kf.Addrs(), ","),
		"--redis-addrs", testenv.RedisAddr(t), "--clickhouse-addr", testenv.ClickHouseAddr(t),
		"--postgres-dsn", dsn, "--auth-secret", "x", "--node-id", "5"}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if code := run(ctx, args, &out, &errb); code == 0 || !strings.Contains(errb.String(), "node id 5") {
		t.Fatalf("second process with --node-id 5: status %d, stderr:\n%s", code, errb.String())
	}
	a := startServe(t, kf.Addrs(), "--postgres-dsn", dsn)
	b := startServe(t, kf.Addrs(), "--postgres-dsn", dsn)
	re := regexp.MustCompile(`node id leased" node_id=(\d+)`)
	ida, idb := re.FindStringSubmatch(a.log.String()), re.FindStringSubmatch(b.log.String())
	if ida == nil || idb == nil || ida[1] == idb[1] || ida[1] == "5" || idb[1] == "5" {
		t.Fatalf("two processes without --node-id leased %v and %v (5 is taken)", ida, idb)
	}
}
