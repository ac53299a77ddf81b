package loadtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/onair/onair/internal/authtoken"
)

// FaultLoadConfig configures StartFaultLoad. Zero values mean the
// documented defaults.
type FaultLoadConfig struct {
	// URL is onair's HTTP API, e.g. "http://127.0.0.1:8080". Required.
	URL string
	// Secret signs the users' tokens. Required.
	Secret []byte
	// Users report and read; ids FirstUser.. FirstUser+Users-1.
	// 0 means 20 users from 1 000 001.
	Users, FirstUser int
	// IngestRate is POSTs per second: three in four a progress report, one
	// in four a batch of three events. 0 means 60.
	IngestRate int
	// ReadRate is GET /v1/history per second, half first pages (Redis),
	// half the page after a user's first (beyond the Redis window when
	// onair runs with a small --history-max-entries: ClickHouse). 0 means 30.
	ReadRate int
	// PageLimit is the limit of every history read; 0 means 20.
	PageLimit int
	// Prefix starts every event id; "" means "ft-<random hex>-".
	Prefix string
	// Timeout is the client's limit per request; 0 means 10 s, well past
	// every bound the faults are measured against.
	Timeout time.Duration
}

// FaultLoad is a steady, open-loop mix of reports and history reads
// against one onair API while faults come and go underneath it. Each
// request is recorded under the phase in force when it was sent.
type FaultLoad struct {
	cfg    FaultLoadConfig
	client *http.Client
	tokens []string
	seq    atomic.Int64
	cancel context.CancelFunc
	wg     sync.WaitGroup // the tickers
	reqs   sync.WaitGroup // requests in flight

	mu       sync.Mutex
	phase    string
	order    []string
	phases   map[string]*PhaseStats
	accepted []string
	cursors  map[int]string // user index → the cursor after their first page
}

// PhaseStats is what one phase's requests met.
type PhaseStats struct {
	Phase string `json:"phase"`
	// Ingest is POST /v1/progress and /v1/events; First and Deep are GET
	// /v1/history without and with a cursor.
	Ingest FaultLatencies `json:"ingest"`
	First  FaultLatencies `json:"history_first"`
	Deep   FaultLatencies `json:"history_deep"`
}

// FaultLatencies summarises one kind of request of a phase.
type FaultLatencies struct {
	Requests int `json:"requests"`
	// Codes counts replies by status; 0 is a transport error or timeout.
	Codes map[int]int `json:"codes"`
	// NoRetryAfter counts 503 replies without a Retry-After header.
	NoRetryAfter int     `json:"no_retry_after"`
	P50          float64 `json:"p50_ms"`
	P99          float64 `json:"p99_ms"`
	Max          float64 `json:"max_ms"`
	ms           []float64
}

// Share returns the fraction of requests answered with status.
func (l FaultLatencies) Share(status int) float64 {
	if l.Requests == 0 {
		return 0
	}
	return float64(l.Codes[status]) / float64(l.Requests)
}

// StartFaultLoad signs the tokens and starts sending, in phase "warmup".
func StartFaultLoad(cfg FaultLoadConfig) (*FaultLoad, error) {
	if cfg.URL == "" || len(cfg.Secret) == 0 {
		return nil, fmt.Errorf("loadtest: FaultLoadConfig needs URL and Secret")
	}
	if cfg.Users == 0 {
		cfg.Users = 20
	}
	if cfg.FirstUser == 0 {
		cfg.FirstUser = 1_000_001
	}
	if cfg.IngestRate == 0 {
		cfg.IngestRate = 60
	}
	if cfg.ReadRate == 0 {
		cfg.ReadRate = 30
	}
	if cfg.PageLimit == 0 {
		cfg.PageLimit = 20
	}
	if cfg.Prefix == "" {
		b := make([]byte, 4)
		_, _ = rand.Read(b)
		cfg.Prefix = "ft-" + hex.EncodeToString(b) + "-"
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	l := &FaultLoad{cfg: cfg, phases: map[string]*PhaseStats{}, cursors: map[int]string{},
		client: &http.Client{Timeout: cfg.Timeout, Transport: &http.Transport{MaxIdleConnsPerHost: 256}}}
	for i := range cfg.Users {
		tok, err := authtoken.Sign(cfg.Secret, uint64(cfg.FirstUser+i), "", 24*time.Hour)
		if err != nil {
			return nil, err
		}
		l.tokens = append(l.tokens, tok)
	}
	l.Phase("warmup")
	ctx, cancel := context.WithCancel(context.Background())
	l.cancel = cancel
	l.tick(ctx, cfg.IngestRate, l.ingest)
	l.tick(ctx, cfg.ReadRate, l.read)
	return l, nil
}

// Prefix returns the event id prefix of the run.
func (l *FaultLoad) Prefix() string { return l.cfg.Prefix }

// Phase records the requests sent from now on under name.
func (l *FaultLoad) Phase(name string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.phase = name
	if l.phases[name] == nil {
		l.phases[name] = &PhaseStats{Phase: name}
		l.order = append(l.order, name)
	}
}

// Stop stops sending, waits for the requests in flight and returns every
// phase's figures in the order the phases began, and the ids of the
// events that got 202.
func (l *FaultLoad) Stop() ([]PhaseStats, []string) {
	l.cancel()
	l.wg.Wait()
	l.reqs.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]PhaseStats, 0, len(l.order))
	for _, name := range l.order {
		p := *l.phases[name]
		for _, lat := range []*FaultLatencies{&p.Ingest, &p.First, &p.Deep} {
			lat.finish()
		}
		out = append(out, p)
	}
	return out, slices.Clone(l.accepted)
}

// tick calls send rate times a second, each in its own goroutine, so a
// stalled server meets the same rate (open loop).
func (l *FaultLoad) tick(ctx context.Context, rate int, send func(ctx context.Context, n int64)) {
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		t := time.NewTicker(time.Second / time.Duration(rate))
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			n := l.seq.Add(1)
			l.reqs.Add(1)
			go func() {
				defer l.reqs.Done()
				send(context.WithoutCancel(ctx), n)
			}()
		}
	}()
}

func (l *FaultLoad) ingest(ctx context.Context, n int64) {
	u := int(n) % len(l.tokens)
	now := time.Now().UnixMilli()
	id := l.cfg.Prefix + strconv.FormatInt(n, 10)
	var path string
	var body any
	var ids []string
	if n%4 != 0 {
		path, ids = "/v1/progress", []string{id}
		body = map[string]any{"biz": "audio", "item_id": n, "position_ms": 1000 + n%60_000, "duration_ms": 600_000,
			"ts": now, "device": "faults", "event_id": id}
	} else {
		path, ids = "/v1/events", []string{id + "a", id + "b", id + "c"}
		body = map[string]any{"events": []map[string]any{
			{"type": "progress", "biz": "video", "item_id": n, "position_ms": 5000, "duration_ms": 60_000, "ts": now, "event_id": ids[0]},
			{"type": "play", "biz": "audio", "item_id": n, "listened_ms": 30_000, "ts": now, "event_id": ids[1]},
			{"type": "like", "biz": "audio", "item_id": n, "ts": now, "event_id": ids[2]},
		}}
	}
	b, _ := json.Marshal(body)
	phase, status, _, retry, d := l.do(ctx, http.MethodPost, path, u, b)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.phases[phase].Ingest.add(status, retry, d)
	if status == http.StatusAccepted {
		l.accepted = append(l.accepted, ids...)
	}
}

func (l *FaultLoad) read(ctx context.Context, n int64) {
	u := int(n) % len(l.tokens)
	l.mu.Lock()
	cursor := l.cursors[u]
	l.mu.Unlock()
	deep := n%2 == 0 && cursor != ""
	path := "/v1/history?limit=" + strconv.Itoa(l.cfg.PageLimit)
	if deep {
		path += "&cursor=" + cursor
	}
	phase, status, body, retry, d := l.do(ctx, http.MethodGet, path, u, nil)
	l.mu.Lock()
	defer l.mu.Unlock()
	if deep {
		l.phases[phase].Deep.add(status, retry, d)
		return
	}
	l.phases[phase].First.add(status, retry, d)
	if status == http.StatusOK {
		var page struct {
			Next *string `json:"next_cursor"`
		}
		if json.Unmarshal(body, &page) == nil && page.Next != nil {
			l.cursors[u] = *page.Next
		}
	}
}

// do sends one request as user u and returns the phase it was sent in,
// the status (0 on a transport error), the body, whether a 503 had
// Retry-After, and how long it took.
func (l *FaultLoad) do(ctx context.Context, method, path string, u int, body []byte) (phase string, status int, reply []byte, retry bool, d time.Duration) {
	l.mu.Lock()
	phase = l.phase
	l.mu.Unlock()
	req, err := http.NewRequestWithContext(ctx, method, l.cfg.URL+path, bytes.NewReader(body))
	if err != nil {
		return phase, 0, nil, false, 0
	}
	req.Header.Set("Authorization", "Bearer "+l.tokens[u])
	start := time.Now()
	resp, err := l.client.Do(req)
	if err != nil {
		return phase, 0, nil, false, time.Since(start)
	}
	reply, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	return phase, resp.StatusCode, reply, resp.Header.Get("Retry-After") != "", time.Since(start)
}

func (lat *FaultLatencies) add(status int, retry bool, d time.Duration) {
	if lat.Codes == nil {
		lat.Codes = map[int]int{}
	}
	lat.Requests++
	lat.Codes[status]++
	if status == http.StatusServiceUnavailable && !retry {
		lat.NoRetryAfter++
	}
	lat.ms = append(lat.ms, float64(d.Microseconds())/1000)
}

func (lat *FaultLatencies) finish() {
	if len(lat.ms) == 0 {
		return
	}
	slices.Sort(lat.ms)
	lat.P50, lat.P99, lat.Max = quantile(lat.ms, 0.50), quantile(lat.ms, 0.99), lat.ms[len(lat.ms)-1]
	lat.ms = nil
}
