package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/go-redis/redis_rate/v10"

	"github.com/onair/onair/history"
	"github.com/onair/onair/ingest"
	"github.com/onair/onair/internal/refusal"
	"github.com/onair/onair/internal/testenv"
)

func progressBody(ts time.Time) string {
	return `{"biz":"audio","item_id":123,"position_ms":61000,"duration_ms":1800000,"ts":` +
		strconv.FormatInt(ts.UnixMilli(), 10) + `,"device":"ios-7f3a"}`
}

func TestPostProgress(t *testing.T) {
	e := newEnv(t, nil)
	f := func(uid uint64, first, paused bool, want string) {
		t.Helper()
		e.hist.first, e.hist.paused = first, paused
		r := e.post("/v1/progress", token(t, uid, ""), progressBody(testNow))
		if r.status != 202 || r.body != want+"\n" {
			t.Fatalf("got %d %s, want 202 %s", r.status, r.body, want)
		}
	}
	f(42, true, false, `{"accepted":true,"first_today":true,"history_paused":false}`)
	f(43, false, true, `{"accepted":true,"first_today":false,"history_paused":true}`)
	evs := e.prod.events()
	if len(evs) != 2 || evs[0].UserID != 42 || evs[0].ItemID != 123 || evs[0].Biz != ingest.BizAudio || evs[0].Device != "ios-7f3a" {
		t.Fatalf("produced %+v", evs)
	}
	if len(e.hist.touches) != 2 || e.hist.touches[0] != 42 {
		t.Fatalf("touches %v", e.hist.touches)
	}
}

func TestPostProgressErrors(t *testing.T) {
	e := newEnv(t, nil)
	tok := token(t, 42, "")
	future := testNow.Add(10 * time.Minute).UnixMilli()

	wantError(t, e.post("/v1/progress", tok, `{"biz":"podcast","item_id":1,"position_ms":1,"ts":1763800000000}`), 400, refusal.CodeInvalidArgument, "biz")
	wantError(t, e.post("/v1/progress", tok, `{"biz":"audio","item_id":1,"position_ms":1,"ts":`+strconv.FormatInt(future, 10)+`}`), 400, refusal.CodeInvalidArgument, "ts")
	wantError(t, e.post("/v1/progress", tok, `{"biz":`), 400, refusal.CodeInvalidArgument, "")
	wantError(t, e.post("/v1/progress", tok, ``), 400, refusal.CodeInvalidArgument, "")
	// A user token naming another user.
	wantError(t, e.post("/v1/progress", tok, `{"user_id":7,"biz":"audio","item_id":1,"position_ms":1,"ts":1763800000000}`), 403, refusal.CodePermissionDenied, "user_id")
	// A service token may.
	if r := e.post("/v1/progress", token(t, 1, RoleService), `{"user_id":7,"biz":"audio","item_id":1,"position_ms":1,"ts":1763800000000}`); r.status != 202 {
		t.Fatalf("service post: %d %s", r.status, r.body)
	}
	if got := e.hist.touches; len(got) != 1 || got[0] != 7 {
		t.Fatalf("touches %v, want the event's user 7", got)
	}
	if n := len(e.prod.events()); n != 1 {
		t.Fatalf("%d events produced, want 1", n)
	}
}

func TestProducerUnavailable(t *testing.T) {
	e := newEnv(t, nil)
	e.prod.err = fmt.Errorf("%w: 1 of 1 events not acknowledged: broker down", ingest.ErrUnavailable)
	tok := token(t, 42, "")
	r := e.post("/v1/progress", tok, progressBody(testNow))
	wantError(t, r, 503, refusal.CodeUnavailable, "")
	if r.header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	wantError(t, e.post("/v1/events", tok, `{"events":[`+batchEvent(0)+`]}`), 503, refusal.CodeUnavailable, "")
	if len(e.hist.touches) != 0 {
		t.Fatal("Touch called for events Kafka did not take")
	}
	e.prod.err = errors.New("bug")
	wantError(t, e.post("/v1/progress", tok, progressBody(testNow)), 500, refusal.CodeInternal, "")
}

func TestTouchFailureStillAccepts(t *testing.T) {
	e := newEnv(t, nil)
	e.hist.first, e.hist.touchErr = true, errors.New("redis down")
	r := e.post("/v1/progress", token(t, 42, ""), progressBody(testNow))
	if r.status != 202 || !strings.Contains(r.body, `"first_today":false`) {
		t.Fatalf("got %d %s", r.status, r.body)
	}
	if m := e.ops("/metrics").body; !strings.Contains(m, `onair_api_errors_total{reason="touch_failed",route="/v1/progress"} 1`) {
		t.Fatal("touch failure not counted")
	}
}

func batchEvent(i int) string {
	return `{"type":"progress","biz":"video","item_id":` + strconv.Itoa(i+1) + `,"position_ms":5000,"duration_ms":60000,"ts":1763800000000}`
}

func TestPostEvents(t *testing.T) {
	e := newEnv(t, nil)
	tok := token(t, 42, "")
	body := `{"events":[` + batchEvent(0) + `,
	  {"type":"play","biz":"radio","item_id":77,"station_id":3,"listened_ms":30000,"ts":1763800000000},
	  {"type":"skip","biz":"radio","item_id":78,"station_id":3,"ts":1763800001000},
	  {"type":"like","biz":"audio","item_id":123,"ts":1763800002000},
	  {"type":"like","biz":"video","item_id":9,"ts":1763800004000}]}`
	r := e.post("/v1/events", tok, body)
	if r.status != 202 || r.body != "{\"accepted\":5}\n" {
		t.Fatalf("got %d %s", r.status, r.body)
	}
	// A gift exists only if paid for: refused from a user, naming the type.
	gift := `{"type":"gift","room_id":5,"anchor_id":8,"gift_id":2,"value":200,"ts":1763800003000}`
	wantError(t, e.post("/v1/events", tok, `{"events":[`+batchEvent(0)+`,`+gift+`]}`), 400, refusal.CodeInvalidArgument, "events[1].type")
	if len(e.prod.events()) != 5 || len(e.hist.touches) != 1 || e.hist.touches[0] != 42 {
		t.Fatalf("events %d touches %v", len(e.prod.events()), e.hist.touches)
	}
	// No play/progress of the caller: no Touch.
	e.post("/v1/events", tok, `{"events":[{"type":"like","biz":"audio","item_id":1,"ts":1763800000000}]}`)
	if len(e.hist.touches) != 1 {
		t.Fatalf("touches %v", e.hist.touches)
	}
}

func TestPostEventsErrors(t *testing.T) {
	e := newEnv(t, nil)
	tok := token(t, 42, "")
	r := e.post("/v1/events", tok, `{"events":[`+batchEvent(0)+`,{"type":"like","biz":"audio","item_id":0,"ts":1763800000000},`+
		batchEvent(2)+`,{"type":"progress","biz":"audio","item_id":1,"position_ms":1,"ts":1}]}`)
	wantError(t, r, 400, refusal.CodeInvalidArgument, "events[1].item_id")
	b := r.err(t)
	if len(b.Errors) != 2 || b.Errors[0].Field != "events[1].item_id" || b.Errors[1].Field != "events[3].ts" || b.Errors[1].Message == "" {
		t.Fatalf("errors %+v", b.Errors)
	}
	if len(e.prod.events()) != 0 {
		t.Fatal("a batch with bad events was partly produced")
	}

	evs := make([]string, ingest.MaxBatchEvents+1)
	for i := range evs {
		evs[i] = batchEvent(i)
	}
	wantError(t, e.post("/v1/events", tok, `{"events":[`+strings.Join(evs, ",")+`]}`), 413, refusal.CodePayloadTooLarge, "events")
	if r := e.post("/v1/events", tok, `{"events":[`+strings.Join(evs[1:], ",")+`]}`); r.status != 202 {
		t.Fatalf("%d events: %d %s", ingest.MaxBatchEvents, r.status, r.body)
	}
	wantError(t, e.post("/v1/events", tok, `{"events":[{"type":"like","user_id":9,"biz":"audio","item_id":1,"ts":1763800000000}]}`),
		403, refusal.CodePermissionDenied, "events[0].user_id")
	wantError(t, e.post("/v1/events", tok, `{"events":[]}`), 400, refusal.CodeInvalidArgument, "events")
}

// TestDanmakuRefusedOnEvents: a user's danmaku goes through its room's
// route (the blocked words, the room, the danmaku rate), never through
// POST /v1/events; the whole batch is refused, each danmaku named. A
// service token (a trusted backend importing history) may post them.
// Break tried: DecodeBatch alone (the old code) accepted the batch with 202.
func TestDanmakuRefusedOnEvents(t *testing.T) {
	e := newEnv(t, nil)
	dm := `{"type":"danmaku","user_id":42,"room_id":5,"text":"buy SPAM","ts":1763800004000}`
	batch := `{"events":[` + strings.Replace(batchEvent(0), "{", `{"user_id":42,`, 1) + `,` + dm + `,` + dm + `]}`
	r := e.post("/v1/events", token(t, 42, ""), batch)
	wantError(t, r, 400, refusal.CodeInvalidArgument, "events[1].type")
	if b := r.err(t); len(b.Errors) != 2 || b.Errors[1].Field != "events[2].type" {
		t.Fatalf("errors %+v", b.Errors)
	}
	if n := len(e.prod.events()); n != 0 {
		t.Fatalf("%d events produced from a user's batch holding danmaku", n)
	}
	if r := e.post("/v1/events", token(t, 1, RoleService), batch); r.status != 202 {
		t.Fatalf("a service's batch with danmaku: %d %s", r.status, r.body)
	}
}

// TestEventBudget: the budget counts events, not requests — a batch costs
// its size — per user and apart for service tokens, and the 429 names the
// budget with a Retry-After. Break tried: a cost of 1 per request (the old
// request limit) let the second batch through with 202.
func TestEventBudget(t *testing.T) {
	rdb, prefix := testenv.Redis(t)
	e := newEnv(t, func(c *Config) {
		c.Redis, c.RatePrefix = rdb, prefix
		// slow refills (1 event/s, a service's 1 000/s) keep the test
		// independent of how long a 1 000-event request takes on a busy machine
		c.EventRate, c.ServiceEventRate = 1, ingest.MaxBatchEvents
	})
	batch := func(n int) string {
		evs := make([]string, n)
		for i := range evs {
			evs[i] = strings.Replace(batchEvent(i), "{", `{"user_id":42,`, 1)
		}
		return `{"events":[` + strings.Join(evs, ",") + `]}`
	}
	user := token(t, 42, "")
	if r := e.post("/v1/events", user, batch(ingest.MaxBatchEvents)); r.status != 202 {
		t.Fatalf("a full batch within the burst: %d %s", r.status, r.body)
	}
	r := e.post("/v1/events", user, batch(5))
	wantError(t, r, 429, refusal.CodeRateLimited, "events")
	if !strings.Contains(r.err(t).Error.Message, "1 events per second") {
		t.Fatalf("the 429 does not name the budget: %s", r.body)
	}
	if ra, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || ra < 1 {
		t.Fatalf("Retry-After %q", r.header.Get("Retry-After"))
	}
	wantError(t, e.post("/v1/progress", user, progressBody(testNow)), 429, refusal.CodeRateLimited, "events")
	// Another user, and a service token (a budget of its own), are not held up.
	if r := e.post("/v1/events", token(t, 43, ""), strings.ReplaceAll(batch(5), `"user_id":42`, `"user_id":43`)); r.status != 202 {
		t.Fatalf("another user: %d %s", r.status, r.body)
	}
	svc := token(t, 42, RoleService)
	if r := e.post("/v1/events", svc, batch(ingest.MaxBatchEvents)); r.status != 202 {
		t.Fatalf("service batch: %d %s", r.status, r.body)
	}
	wantError(t, e.post("/v1/events", svc, batch(ingest.MaxBatchEvents)), 429, refusal.CodeRateLimited, "events")
	if got := len(e.prod.events()); got != 2*ingest.MaxBatchEvents+5 {
		t.Fatalf("%d events produced, want %d", got, 2*ingest.MaxBatchEvents+5)
	}
}

// TestEventBudgetPaysLargeCostsOverCalls: a cost above what Redis has now
// is refused, but the tokens granted meanwhile are kept, so the batch
// passes once the budget has refilled by the rest (it is not starved by
// smaller costs). At 1 000 events/s a 1 000-event batch after a spent
// burst waits about a second.
func TestEventBudgetPaysLargeCostsOverCalls(t *testing.T) {
	rdb, prefix := testenv.Redis(t)
	e := newEnv(t, func(c *Config) { c.Redis, c.RatePrefix, c.EventRate = rdb, prefix, 1000 })
	evs := make([]string, ingest.MaxBatchEvents)
	for i := range evs {
		evs[i] = batchEvent(i)
	}
	full := `{"events":[` + strings.Join(evs, ",") + `]}`
	tok := token(t, 44, "")
	if r := e.post("/v1/events", tok, full); r.status != 202 {
		t.Fatalf("first batch: %d %s", r.status, r.body)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		r := e.post("/v1/events", tok, full)
		if r.status == 202 {
			break
		}
		wantError(t, r, 429, refusal.CodeRateLimited, "events")
		if time.Now().After(deadline) {
			t.Fatal("a full batch was still refused 5 s after the burst was spent (at 1 000 events/s)")
		}
		time.Sleep(100 * time.Millisecond) // GCRA runs on Redis's clock
		e.now.Add(100)                     // the local deny on the server's
	}
}

// TestBodyLimit: a body of exactly 1 MiB is read; one byte more is 413,
// with or without a Content-Length.
func TestBodyLimit(t *testing.T) {
	e := newEnv(t, nil)
	tok := token(t, 42, "")
	body := progressBody(testNow)
	exact := body + strings.Repeat(" ", ingest.MaxBodyBytes-len(body))
	if r := e.post("/v1/progress", tok, exact); r.status != 202 {
		t.Fatalf("1 MiB body: %d %s", r.status, r.body)
	}
	wantError(t, e.post("/v1/progress", tok, exact+" "), 413, refusal.CodePayloadTooLarge, "")
	// Chunked: no Content-Length, so the limit is found while reading.
	r := e.do("POST", "/v1/events", tok, io.MultiReader(strings.NewReader(exact), strings.NewReader("  ")))
	wantError(t, r, 413, refusal.CodePayloadTooLarge, "")
}

// TestRateLimit runs against real Redis: the limiter's keys carry the
// test's prefix, and the request past the limit gets 429 + Retry-After.
func TestRateLimit(t *testing.T) {
	rdb, prefix := testenv.Redis(t)
	e := newEnv(t, func(c *Config) {
		c.Redis, c.RatePrefix, c.RateLimit = rdb, prefix, 5
	})
	tok := token(t, 42, "")
	for i := range 5 {
		if r := e.post("/v1/progress", tok, progressBody(testNow)); r.status != 202 {
			t.Fatalf("request %d: %d %s", i, r.status, r.body)
		}
	}
	r := e.post("/v1/progress", tok, progressBody(testNow))
	wantError(t, r, 429, refusal.CodeRateLimited, "")
	if ra, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || ra < 1 {
		t.Fatalf("Retry-After %q", r.header.Get("Retry-After"))
	}
	// Refused again (from the local deny cache) until Retry-After passes,
	// then allowed: at 5/s one request is back after 200 ms.
	wantError(t, e.post("/v1/progress", tok, progressBody(testNow)), 429, refusal.CodeRateLimited, "")
	time.Sleep(250 * time.Millisecond) // GCRA runs on Redis's clock
	e.now.Add(250)                     // the local deny on the server's
	if r := e.post("/v1/progress", tok, progressBody(testNow)); r.status != 202 {
		t.Fatalf("after the retry delay: %d %s", r.status, r.body)
	}
	// Limits are per user.
	if r := e.post("/v1/progress", token(t, 43, ""), progressBody(testNow)); r.status != 202 {
		t.Fatalf("another user: %d", r.status)
	}
	keys, err := rdb.Keys(context.Background(), prefix+"*").Result()
	if err != nil || len(keys) != 2 {
		t.Fatalf("limiter keys %v, %v", keys, err)
	}
	for _, k := range keys {
		if !strings.HasPrefix(k, prefix+"rate:") {
			t.Fatalf("limiter key %q lacks the prefix", k)
		}
	}
}

// TestLeaseSize: a lease is a twentieth of a second's limit at every
// limit, so a node calls Redis at most 20 times a second for a user at the
// limit, and one lease is at most that share of the limit.
func TestLeaseSize(t *testing.T) {
	for perSecond, want := range map[int]int{1: 1, 19: 1, 20: 1, 100: 5, 200: 10, 1280: 64, 100_000: 5_000, 1_000_000: 50_000} {
		if got := newRateLimiter(nil, "", perSecond).leaseSize; got != want {
			t.Errorf("lease at %d/s = %d, want %d", perSecond, got, want)
		}
	}
}

// TestRateLimitLease: a node leases several tokens per Redis call and
// spends them locally, also after a pause of minutes (a lease's life does
// not loosen the limit, so it is long); a spent or expired lease asks Redis
// again. Redis's GCRA state tells whether a request reached it.
func TestRateLimitLease(t *testing.T) {
	rdb, prefix := testenv.Redis(t)
	e := newEnv(t, func(c *Config) { c.Redis, c.RatePrefix, c.RateLimit = rdb, prefix, 100 })
	lease := e.s.limiter.leaseSize
	if lease != 5 {
		t.Fatalf("lease at 100/s = %d, want 5", lease)
	}
	tok, key := token(t, 44, ""), prefix+"rate:44"
	state := func() string {
		t.Helper()
		v, err := rdb.Get(context.Background(), key).Result()
		if err != nil {
			t.Fatalf("GCRA state %s: %v", key, err)
		}
		return v
	}
	post := func(what string) {
		t.Helper()
		if r := e.post("/v1/progress", tok, progressBody(testNow)); r.status != 202 {
			t.Fatalf("%s: %d %s", what, r.status, r.body)
		}
	}
	post("first request (takes a lease)")
	leased := state()
	for i := 1; i < lease; i++ {
		e.now.Add(time.Minute.Milliseconds())
		post(fmt.Sprintf("request %d, minutes later", i+1))
		if s := state(); s != leased {
			t.Fatalf("request %d asked Redis (state %s -> %s), want it served from the lease", i+1, leased, s)
		}
	}
	post("request after the lease is spent")
	if s := state(); s == leased {
		t.Fatal("a spent lease did not ask Redis again")
	}
	renewed := state()
	e.now.Add(time.Duration(leaseFor).Milliseconds() + 1)
	post("request after the lease expired")
	if s := state(); s == renewed {
		t.Fatal("an expired lease did not ask Redis again")
	}
}

// TestRateLimitLeaseNearLimit: with fewer tokens left in Redis than a
// lease, one call leases what is left (the next request is served from it),
// rather than failing the lease and taking a single token.
func TestRateLimitLeaseNearLimit(t *testing.T) {
	rdb, prefix := testenv.Redis(t)
	e := newEnv(t, func(c *Config) { c.Redis, c.RatePrefix, c.RateLimit = rdb, prefix, 2000 })
	lease := e.s.limiter.leaseSize // 100 of a burst of 2 000
	// Another node spent all but 3 tokens; Redis refills one every 0.5 ms,
	// so the request finds fewer than a lease unless it comes 48 ms later.
	other := redis_rate.NewLimiter(prefixedScripts{rdb, prefix})
	if res, err := other.AllowN(context.Background(), "46", redis_rate.PerSecond(2000), 2000-3); err != nil || res.Allowed == 0 {
		t.Fatalf("spending the burst: %+v, %v", res, err)
	}
	if r := e.post("/v1/progress", token(t, 46, ""), progressBody(testNow)); r.status != 202 {
		t.Fatalf("got %d %s", r.status, r.body)
	}
	e.s.limiter.mu.Lock()
	left := e.s.limiter.users[46].tokens
	e.s.limiter.mu.Unlock()
	if left < 2 {
		t.Fatalf("lease left %d tokens, want at least 2 (Redis had 3 or more, of a lease of %d)", left, lease)
	}
}

// TestRateLimitRedisDown: a limiter that cannot reach Redis lets requests
// through (ingest must keep accepting while Redis is down) and counts it.
func TestRateLimitRedisDown(t *testing.T) {
	rdb, prefix := testenv.Redis(t)
	rdb.Close()
	e := newEnv(t, func(c *Config) { c.Redis, c.RatePrefix, c.RateLimit = rdb, prefix, DefaultRateLimit })
	if r := e.post("/v1/progress", token(t, 42, ""), progressBody(testNow)); r.status != 202 {
		t.Fatalf("got %d %s", r.status, r.body)
	}
	if m := e.ops("/metrics").body; !strings.Contains(m, `reason="ratelimit_failed"`) {
		t.Fatal("limiter failure not counted")
	}
}

type nopProducer struct{}

func (nopProducer) Produce(context.Context, []ingest.Event) error { return nil }

// BenchmarkProgressHandler is POST /v1/progress through the whole handler
// chain (auth from cache, decode, no-op producer, no-op Touch), no network;
// BenchmarkHelloHandler is the gin hello-world JSON endpoint in the same
// harness, for comparison.
func BenchmarkProgressHandler(b *testing.B) {
	s, err := New(Config{AuthSecret: testSecret, Producer: nopProducer{}, History: &nopHistory{}})
	if err != nil {
		b.Fatal(err)
	}
	tok, _ := SignToken(testSecret, 42, "", time.Hour)
	body := []byte(progressBody(time.Now()))
	b.SetBytes(int64(len(body)))
	benchHandler(b, s.Handler(), "POST", "/v1/progress", tok, body, 202)
}

func BenchmarkHelloHandler(b *testing.B) {
	benchHandler(b, helloHandler(), "GET", "/hello", "", nil, 200)
}

func helloHandler() http.Handler {
	gin.SetMode(gin.ReleaseMode)
	h := gin.New()
	h.GET("/hello", func(c *gin.Context) { c.JSON(200, gin.H{"hello": "world"}) })
	return h
}

// benchHandler serves one request per op, reusing the request and
// recorder so that the harness costs little next to the handler.
func benchHandler(b *testing.B, h http.Handler, method, path, tok string, body []byte, want int) {
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		req := httptest.NewRequest(method, path, nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		req.ContentLength = int64(len(body))
		rd := bytes.NewReader(body)
		w := &discardWriter{h: http.Header{}}
		for pb.Next() {
			rd.Reset(body)
			req.Body = io.NopCloser(rd)
			clear(w.h)
			w.code = 0
			h.ServeHTTP(w, req)
			if w.code != want {
				b.Fatalf("status %d", w.code)
			}
		}
	})
}

type discardWriter struct {
	h    http.Header
	code int
}

func (w *discardWriter) Header() http.Header { return w.h }
func (w *discardWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
}
func (w *discardWriter) Write(p []byte) (int, error) {
	w.WriteHeader(200)
	return len(p), nil
}

// BenchmarkHTTP compares POST /v1/progress (no-op producer and Touch;
// without and with the Redis rate limiter) with gin's hello world over real
// loopback HTTP, as vegeta would; the target is progress ≥ 0.7× hello.
func BenchmarkHTTP(b *testing.B) {
	s, err := New(Config{AuthSecret: testSecret, Producer: nopProducer{}, History: &nopHistory{}})
	if err != nil {
		b.Fatal(err)
	}
	rdb, prefix := testenv.Redis(b)
	limited, err := New(Config{AuthSecret: testSecret, Producer: nopProducer{}, History: &nopHistory{},
		Redis: rdb, RatePrefix: prefix, RateLimit: 1 << 30})
	if err != nil {
		b.Fatal(err)
	}
	tok, _ := SignToken(testSecret, 42, "", time.Hour)
	body := progressBody(time.Now())
	for _, bc := range []struct {
		name, method, path, body string
		h                        http.Handler
	}{
		{"hello", "GET", "/hello", "", helloHandler()},
		{"progress", "POST", "/v1/progress", body, s.Handler()},
		{"progress_ratelimited", "POST", "/v1/progress", body, limited.Handler()},
	} {
		b.Run(bc.name, func(b *testing.B) {
			ts := httptest.NewServer(bc.h)
			defer ts.Close()
			tr := &http.Transport{MaxIdleConnsPerHost: 64}
			defer tr.CloseIdleConnections()
			cl := &http.Client{Transport: tr}
			b.SetParallelism(8)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req, _ := http.NewRequest(bc.method, ts.URL+bc.path, strings.NewReader(bc.body))
					req.Header.Set("Authorization", "Bearer "+tok)
					resp, err := cl.Do(req)
					if err != nil {
						b.Fatal(err)
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode >= 300 {
						b.Fatalf("status %d", resp.StatusCode)
					}
				}
			})
		})
	}
}

// progressPoster posts a progress report at the pinned clock and checks
// the 202's body.
func (e *env) progressPoster(t *testing.T, tok string) func(want string) {
	return func(want string) {
		t.Helper()
		r := e.post("/v1/progress", tok, progressBody(time.UnixMilli(e.now.Load())))
		if r.status != 202 || r.body != want+"\n" {
			t.Fatalf("got %d %s, want 202 %s", r.status, r.body, want)
		}
	}
}

func TestTouchCacheSavesRoundTripsButNotTruth(t *testing.T) {
	e := newEnv(t, nil)
	tok := token(t, 42, "")
	post := e.progressPoster(t, tok)
	e.hist.first = true
	post(`{"accepted":true,"first_today":true,"history_paused":false}`)
	// Same day, within touchFresh: answered from memory, never "first" again.
	post(`{"accepted":true,"first_today":false,"history_paused":false}`)
	if n := len(e.hist.touches); n != 1 {
		t.Fatalf("%d touches for two events in a row, want 1", n)
	}
	// After touchFresh the pause flag is read again, by itself: the day
	// is known to be touched already (a Touch would answer "first" here,
	// as the fake is set to).
	e.hist.first, e.hist.paused = true, true
	e.now.Add(touchFresh.Milliseconds())
	post(`{"accepted":true,"first_today":false,"history_paused":true}`)
	if n, f := len(e.hist.touches), len(e.hist.flags); n != 1 || f != 1 {
		t.Fatalf("after touchFresh: %d touches, %d pause flag reads, want 1 and 1", n, f)
	}
	// A new day is a new first event.
	e.hist.first, e.hist.paused = true, false
	e.now.Add(24 * time.Hour.Milliseconds())
	var err error
	if tok, err = signAt(testSecret, 42, "", time.UnixMilli(e.now.Load()).Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	post = e.progressPoster(t, tok)
	post(`{"accepted":true,"first_today":true,"history_paused":false}`)
	if n := len(e.hist.touches); n != 2 {
		t.Fatalf("%d touches on a new day, want 2", n)
	}
}

// TestPauseWatcherExtendsTrust: while the pause watcher is live, the flag
// this node read is trusted past touchFresh; a change on any node (a
// Changed notice) or the watcher falling silent ends that at once.
func TestPauseWatcherExtendsTrust(t *testing.T) {
	e := newEnv(t, nil)
	tok := token(t, 42, "")
	post := e.progressPoster(t, tok)
	flags := func() int {
		e.hist.mu.Lock()
		defer e.hist.mu.Unlock()
		return len(e.hist.flags)
	}
	e.s.onPauseNotice(history.PauseNotice{Reset: true})
	post(`{"accepted":true,"first_today":false,"history_paused":false}`)

	// live watcher, no change: trusted past touchFresh
	e.hist.paused = true
	e.now.Add(2 * touchFresh.Milliseconds())
	e.s.onPauseNotice(history.PauseNotice{})
	post(`{"accepted":true,"first_today":false,"history_paused":false}`)
	if f := flags(); f != 0 {
		t.Fatalf("%d pause flag reads while the watcher is live, want 0", f)
	}
	// another user's change does not touch user 42
	e.s.onPauseNotice(history.PauseNotice{Changed: true, UserID: 43})
	post(`{"accepted":true,"first_today":false,"history_paused":false}`)
	// user 42's change: read again at once
	e.s.onPauseNotice(history.PauseNotice{Changed: true, UserID: 42})
	post(`{"accepted":true,"first_today":false,"history_paused":true}`)
	if f := flags(); f != 1 {
		t.Fatalf("%d pause flag reads after a change, want 1", f)
	}
	// the watcher falls silent: touchFresh applies again
	e.hist.paused = false
	e.now.Add((watchLive + touchFresh).Milliseconds())
	post(`{"accepted":true,"first_today":false,"history_paused":false}`)
	if f := flags(); f != 2 {
		t.Fatalf("%d pause flag reads once the watcher is silent, want 2", f)
	}
	// beyond touchTrust even a live watcher does not extend trust
	e.hist.paused = true
	e.now.Add(touchTrust.Milliseconds())
	e.s.onPauseNotice(history.PauseNotice{})
	post(`{"accepted":true,"first_today":false,"history_paused":true}`)
	if f := flags(); f != 3 {
		t.Fatalf("%d pause flag reads after touchTrust, want 3", f)
	}
}

// TestTouchCacheDropsReadsOlderThanAChange: a flag read that began before
// an invalidation is not cached (it may predate the change).
func TestTouchCacheDropsReadsOlderThanAChange(t *testing.T) {
	tc := touchCache{users: map[uint64]touched{}}
	now := time.Unix(1_800_000_000, 0)
	_, _, _, epoch := tc.get(1, now)
	tc.invalidate(1)
	tc.put(1, now, false, epoch)
	if today, _, _, _ := tc.get(1, now); today {
		t.Fatal("a read begun before the invalidation was cached")
	}
	_, _, _, epoch = tc.get(1, now)
	tc.put(1, now, true, epoch)
	if today, fresh, paused, _ := tc.get(1, now); !today || !fresh || !paused {
		t.Fatalf("got today %v fresh %v paused %v, want the read cached", today, fresh, paused)
	}
}
