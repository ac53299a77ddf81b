package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/onair/onair/history"
	"github.com/onair/onair/ingest"
	"github.com/onair/onair/internal/apitest"
	"github.com/onair/onair/internal/refusal"
	"github.com/onair/onair/internal/version"
)

var testSecret = []byte("test-secret-0123456789abcdef0123")

// testNow is the pinned clock of test servers: 2025-11-22 08:26:40 UTC.
var testNow = time.UnixMilli(1763800000000)

// fakeProducer records what it is given; err, when set, is returned
// instead; block, when set, is waited on first, after a send on entered.
type fakeProducer struct {
	mu      sync.Mutex
	calls   [][]ingest.Event
	err     error
	entered chan struct{}
	block   chan struct{}
}

func (p *fakeProducer) Produce(ctx context.Context, evs []ingest.Event) error {
	if p.block != nil {
		p.entered <- struct{}{}
		<-p.block
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return p.err
	}
	p.calls = append(p.calls, append([]ingest.Event(nil), evs...))
	return nil
}

func (p *fakeProducer) events() []ingest.Event {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []ingest.Event
	for _, c := range p.calls {
		out = append(out, c...)
	}
	return out
}

// fakeHistory answers from fixed data and records the mutating calls as
// strings ("delete 42 audio 123").
type fakeHistory struct {
	mu       sync.Mutex
	calls    []string
	touches  []uint64
	flags    []uint64 // PauseFlag calls
	first    bool
	paused   bool
	touchErr error
	err      error // returned by every other method when set
	page     history.Page
	entries  map[history.ItemKey]history.Entry
	cont     []history.Entry
	gotLimit int
	gotCur   string
	gotBiz   ingest.Biz
}

func (h *fakeHistory) record(s string) {
	h.mu.Lock()
	h.calls = append(h.calls, s)
	h.mu.Unlock()
}

func (h *fakeHistory) Touch(_ context.Context, uid uint64, _ time.Time) (bool, bool, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.touches = append(h.touches, uid)
	return h.first, h.paused, h.touchErr
}

func (h *fakeHistory) PauseFlag(_ context.Context, uid uint64) (bool, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.flags = append(h.flags, uid)
	return h.paused, h.touchErr
}

func (h *fakeHistory) History(_ context.Context, _ uint64, biz ingest.Biz, limit int, cursor string) (history.Page, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.gotBiz, h.gotLimit, h.gotCur = biz, limit, cursor
	if cursor == "bad" {
		return history.Page{}, history.ErrBadCursor
	}
	return h.page, h.err
}

func (h *fakeHistory) Progress(_ context.Context, _ uint64, keys []history.ItemKey) (map[history.ItemKey]history.Entry, error) {
	out := map[history.ItemKey]history.Entry{}
	for _, k := range keys {
		if e, ok := h.entries[k]; ok {
			out[k] = e
		}
	}
	return out, h.err
}

func (h *fakeHistory) Delete(_ context.Context, uid uint64, biz ingest.Biz, id uint64, _ time.Time) error {
	h.record("delete " + u(uid) + " " + biz.String() + " " + u(id))
	return h.err
}

func (h *fakeHistory) Clear(_ context.Context, uid uint64, biz ingest.Biz, _ time.Time) error {
	h.record("clear " + u(uid) + " " + biz.String())
	return h.err
}

func (h *fakeHistory) Paused(context.Context, uint64) (bool, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.paused, h.err
}

func (h *fakeHistory) SetPaused(_ context.Context, uid uint64, p bool, _ time.Time) error {
	h.mu.Lock()
	h.paused = p
	h.mu.Unlock()
	h.record("setpaused " + u(uid))
	return h.err
}

func (h *fakeHistory) Continue(_ context.Context, _ uint64, biz ingest.Biz, limit int) ([]history.Entry, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.gotBiz, h.gotLimit = biz, limit
	return h.cont, h.err
}

func (h *fakeHistory) Hide(_ context.Context, uid uint64, biz ingest.Biz, id uint64, _ time.Time) error {
	h.record("hide " + u(uid) + " " + biz.String() + " " + u(id))
	return h.err
}

func u(v uint64) string { return strconv.FormatUint(v, 10) }

var (
	_ Producer = (*ingest.Producer)(nil)
	_ History  = (*history.Store)(nil)
	_ Producer = (*fakeProducer)(nil)
	_ History  = (*fakeHistory)(nil)
)

// env is a test server with fakes behind it.
type env struct {
	t  testing.TB
	s  *Server
	ts *httptest.Server
	// opsTS serves the ops listener's handler (/metrics, /readyz detail).
	opsTS *httptest.Server
	// api checks every exchange of do against the OpenAPI document;
	// client sends through it.
	api    *apitest.Checker
	client *http.Client
	prod   *fakeProducer
	hist   *fakeHistory
	reg    *prometheus.Registry
	now    atomic.Int64 // unix ms of the pinned clock
}

func newEnv(t testing.TB, edit func(*Config)) *env {
	t.Helper()
	e := &env{t: t, prod: &fakeProducer{}, hist: &fakeHistory{}, reg: prometheus.NewRegistry()}
	e.now.Store(testNow.UnixMilli())
	cfg := Config{
		Addr:       "127.0.0.1:0",
		AuthSecret: testSecret,
		Producer:   e.prod,
		History:    e.hist,
		Registry:   e.reg,
		Now:        func() time.Time { return time.UnixMilli(e.now.Load()) },
	}
	if edit != nil {
		edit(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	e.s = s
	e.ts = httptest.NewServer(s.Handler())
	t.Cleanup(e.ts.Close)
	e.opsTS = httptest.NewServer(s.OpsHandler())
	t.Cleanup(e.opsTS.Close)
	e.api = apitest.New(t)
	e.client = e.api.Client(e.ts.Client())
	return e
}

// token signs a token valid at the pinned clock.
func token(t testing.TB, uid uint64, role string) string {
	t.Helper()
	tok, err := signAt(testSecret, uid, role, testNow.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

type reply struct {
	status int
	header http.Header
	body   string
}

// errBody is the error part of a JSON error reply.
type errBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Field   string `json:"field"`
	} `json:"error"`
	Errors []struct {
		Field   string `json:"field"`
		Message string `json:"message"`
	} `json:"errors"`
}

func (r reply) err(t testing.TB) errBody {
	t.Helper()
	var b errBody
	if err := json.Unmarshal([]byte(r.body), &b); err != nil {
		t.Fatalf("error body %q: %v", r.body, err)
	}
	return b
}

func (e *env) do(method, path, tok string, body io.Reader) reply {
	e.t.Helper()
	req, err := http.NewRequest(method, e.ts.URL+path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := e.client.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, resp.Header, string(b)}
}

func (e *env) get(path, tok string) reply { return e.do("GET", path, tok, nil) }

// ops GETs path from the ops listener (not in the API document).
func (e *env) ops(path string) reply {
	e.t.Helper()
	resp, err := e.opsTS.Client().Get(e.opsTS.URL + path)
	if err != nil {
		e.t.Fatalf("GET ops %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, resp.Header, string(b)}
}

func (e *env) post(path, tok, body string) reply {
	return e.do("POST", path, tok, strings.NewReader(body))
}

// wantError checks status, code and field of an error reply.
func wantError(t testing.TB, r reply, status int, code, field string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d; body %s", r.status, status, r.body)
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type %q", ct)
	}
	b := r.err(t)
	if b.Error.Code != code || b.Error.Field != field || b.Error.Message == "" {
		t.Fatalf("error %+v, want code %q field %q; body %s", b.Error, code, field, r.body)
	}
}

func TestNewValidates(t *testing.T) {
	f := func(cfg Config, want string) {
		t.Helper()
		_, err := New(cfg)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("New(%+v) = %v, want error with %q", cfg, err, want)
		}
	}
	f(Config{}, "AuthSecret")
	f(Config{AuthSecret: testSecret, RateLimit: -1}, "RateLimit")
	f(Config{AuthSecret: testSecret, Ready: []ReadyCheck{{Name: "x"}}}, "Ready[0]")

	// Two servers may share a registry (series are shared, not duplicated).
	reg := prometheus.NewRegistry()
	for range 2 {
		if _, err := New(Config{AuthSecret: testSecret, Registry: reg}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestUnmatchedRoutes(t *testing.T) {
	e := newEnv(t, nil)
	wantError(t, e.get("/nope", ""), 404, refusal.CodeNotFound, "")
	r := e.do("PATCH", "/v1/progress", token(t, 1, ""), nil)
	wantError(t, r, 405, refusal.CodeMethodNotAllowed, "")
	if a := r.header.Get("Allow"); !strings.Contains(a, "POST") {
		t.Errorf("Allow %q", a)
	}
}

func TestStartShutdown(t *testing.T) {
	prod := &fakeProducer{entered: make(chan struct{}, 1), block: make(chan struct{})}
	s, err := New(Config{Addr: "127.0.0.1:0", AuthSecret: testSecret, Producer: prod})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	addr := s.Addr()
	if strings.HasSuffix(addr, ":0") {
		t.Fatalf("Addr %q is not the bound address", addr)
	}
	// The port is taken: a second server fails at once.
	s2, _ := New(Config{Addr: addr, AuthSecret: testSecret})
	if err := s2.Start(); err == nil {
		t.Fatal("Start on a taken port succeeded")
	}

	// A request in flight when Shutdown starts is completed.
	tok, err := SignToken(testSecret, 7, "", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest("POST", "http://"+addr+"/v1/progress", strings.NewReader(progressBody(time.Now())))
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- -1
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	<-prod.entered
	shut := make(chan error, 1)
	go func() { shut <- s.Shutdown(context.Background()) }()
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v with a request in flight", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(prod.block)
	if code := <-done; code != 202 {
		t.Fatalf("in-flight request got %d", code)
	}
	if err := <-shut; err != nil {
		t.Fatal(err)
	}
	if _, err := http.Get("http://" + addr + "/healthz"); err == nil {
		t.Fatal("server still accepting after Shutdown")
	}
}

// TestHealthAndReady: /readyz on the API port names the checks and their
// status only, and probes at most once a second however often it is
// called; the ops listener's /readyz has each failure's message. Breaks
// tried: today's readyz (the raw error on the API port: "dial tcp" in the
// body) and no cache (10 calls ran the checks 10 times).
func TestHealthAndReady(t *testing.T) {
	var fail atomic.Bool
	var probes atomic.Int32
	e := newEnv(t, func(c *Config) {
		c.Ready = []ReadyCheck{
			{Name: "kafka", Check: func(context.Context) error { return nil }},
			{Name: "redis", Check: func(context.Context) error {
				probes.Add(1)
				if fail.Load() {
					return errors.New("dial tcp 10.1.2.3:6379: connection refused")
				}
				return nil
			}},
		}
	})
	if r := e.get("/healthz", ""); r.status != 200 || r.body != `{"status":"ok","version":"`+version.Release()+`"}`+"\n" {
		t.Fatalf("healthz %d %q", r.status, r.body)
	}
	r := e.get("/readyz", "")
	if r.status != 200 || r.body != `{"status":"ready","checks":{"kafka":"ok","redis":"ok"}}`+"\n" {
		t.Fatalf("readyz %d %q", r.status, r.body)
	}
	for range 10 {
		e.get("/readyz", "")
	}
	if n := probes.Load(); n != 1 {
		t.Fatalf("11 calls within a second probed Redis %d times, want 1 (cached for a second)", n)
	}
	fail.Store(true)
	deadline := time.Now().Add(3 * time.Second)
	for r = e.get("/readyz", ""); r.status == 200 && time.Now().Before(deadline); r = e.get("/readyz", "") {
		time.Sleep(50 * time.Millisecond) // polling the cache's second out
	}
	wantError(t, r, 503, refusal.CodeUnavailable, "")
	var b struct {
		Failed []string          `json:"failed"`
		Checks map[string]string `json:"checks"`
	}
	if err := json.Unmarshal([]byte(r.body), &b); err != nil {
		t.Fatal(err)
	}
	if len(b.Failed) != 1 || b.Failed[0] != "redis" || b.Checks["redis"] != "failed" || b.Checks["kafka"] != "ok" || strings.Contains(r.body, "10.1.2.3") {
		t.Fatalf("public readyz body %s, want names and status only", r.body)
	}
	r = e.ops("/readyz")
	if err := json.Unmarshal([]byte(r.body), &b); err != nil || r.status != 503 || b.Checks["redis"] != "dial tcp 10.1.2.3:6379: connection refused" {
		t.Fatalf("ops readyz %d %s, want the failure's message", r.status, r.body)
	}
}

func TestReadyTimeout(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the 2 s readiness timeout")
	}
	e := newEnv(t, func(c *Config) {
		c.Ready = []ReadyCheck{{Name: "hang", Check: func(context.Context) error { select {} }}}
	})
	start := time.Now()
	r := e.get("/readyz", "")
	wantError(t, r, 503, refusal.CodeUnavailable, "")
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("readyz took %s", d)
	}
	if r := e.ops("/readyz"); !strings.Contains(r.body, `"hang":"context deadline exceeded"`) {
		t.Fatalf("body %s", r.body)
	}
}

func TestMetrics(t *testing.T) {
	e := newEnv(t, nil)
	tok := token(t, 5, "")
	e.post("/v1/progress", tok, progressBody(testNow))
	e.post("/v1/progress", "", progressBody(testNow))
	e.get("/nope", "")
	r := e.ops("/metrics")
	for _, want := range []string{
		`onair_api_requests_total{code="202",route="/v1/progress"} 1`,
		`onair_api_requests_total{code="401",route="/v1/progress"} 1`,
		`onair_api_requests_total{code="404",route="unmatched"} 1`, // /nope
		`onair_api_errors_total{reason="no_token",route="/v1/progress"} 1`,
		`onair_api_request_duration_seconds_count{route="/v1/progress"} 2`,
		`go_goroutines`,
		`process_`,
	} {
		if !strings.Contains(r.body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

func TestRoutesMountLater(t *testing.T) {
	e := newEnv(t, nil)
	e.api.Allow("/v1/admin/ping", "/v1/whoami") // this test's own routes
	e.s.Admin().GET("/ping", func(c *gin.Context) { c.String(200, "pong") })
	e.s.V1().GET("/whoami", func(c *gin.Context) {
		cl, _ := ClaimsFrom(c)
		c.String(200, "%d", cl.UserID)
	})
	wantError(t, e.get("/v1/admin/ping", token(t, 1, "")), 403, refusal.CodePermissionDenied, "")
	wantError(t, e.get("/v1/admin/ping", token(t, 1, RoleService)), 403, refusal.CodePermissionDenied, "")
	wantError(t, e.get("/v1/admin/ping", ""), 401, refusal.CodeUnauthenticated, "")
	if r := e.get("/v1/admin/ping", token(t, 1, RoleAdmin)); r.status != 200 || r.body != "pong" {
		t.Fatalf("admin ping: %d %s", r.status, r.body)
	}
	if r := e.get("/v1/whoami", token(t, 99, "")); r.body != "99" {
		t.Fatalf("whoami: %d %s", r.status, r.body)
	}
}

func TestPanicIs500(t *testing.T) {
	e := newEnv(t, nil)
	e.api.Allow("/v1/boom")
	e.s.V1().GET("/boom", func(*gin.Context) { panic("boom") })
	wantError(t, e.get("/v1/boom", token(t, 1, "")), 500, refusal.CodeInternal, "")
}
