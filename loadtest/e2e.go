package loadtest

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// E2E defaults, used when an E2EConfig field is zero.
const (
	DefaultClickHouse        = "127.0.0.1:19000"
	DefaultDatabase          = "onair"
	DefaultWait              = 60 * time.Second
	DefaultSampleEvery       = 50
	DefaultVisibilityTimeout = 10 * time.Second
	maxProbesInFlight        = 64
	listCap                  = 100 // ids kept in a summary's Missing / Duplicated lists
)

// E2EConfig describes an end-to-end run: batches through API, Kafka and the
// aggregator into ClickHouse, then an exactness check.
type E2EConfig struct {
	// RunConfig is the load; its Scenario is ignored (always "batch").
	RunConfig
	// ClickHouse is the native-protocol address. "": DefaultClickHouse.
	ClickHouse string
	// Database holds the events table. "": DefaultDatabase.
	Database string
	// CHUser and CHPassword authenticate to ClickHouse. "": "default", none.
	CHUser, CHPassword string
	// Wait bounds how long to wait, after the attack, for ClickHouse to
	// hold every accepted event. 0: DefaultWait.
	Wait time.Duration
	// SampleEvery makes one write in SampleEvery a visibility probe.
	// 0: DefaultSampleEvery; negative: no probes.
	SampleEvery int
	// VisibilityTimeout bounds the polling of one probe. 0:
	// DefaultVisibilityTimeout.
	VisibilityTimeout time.Duration
}

// E2ESummary is what an end-to-end run found.
type E2ESummary struct {
	// Run is the HTTP side of the run.
	Run Summary `json:"run"`
	// RunID tags every event id of the run: lt-<RunID>-...
	RunID string `json:"run_id"`
	// SessionItems is the batch shape (RunConfig.SessionItems).
	SessionItems int `json:"session_items"`
	// AcceptedEvents is the number of events answered with 202.
	AcceptedEvents int `json:"accepted_events"`
	// Complete is true when ClickHouse held every accepted event within
	// Wait.
	Complete bool `json:"complete"`
	// DrainSeconds is the time from the end of the attack until ClickHouse
	// held every accepted event (or Wait ran out).
	DrainSeconds float64 `json:"drain_seconds"`
	// EventsPerSec is AcceptedEvents over the time from the start of the
	// attack until the last one was in ClickHouse.
	EventsPerSec float64 `json:"end_to_end_events_per_sec"`
	// Check is the exactness check; its lists hold at most 100 ids.
	Check CheckResult `json:"check"`
	// MissingCount and DuplicatedCount are the full sizes of Check's lists.
	MissingCount    int `json:"missing_count"`
	DuplicatedCount int `json:"duplicated_count"`
	// Visibility is the 202 → visible-in-GET-/v1/history latency.
	Visibility Visibility `json:"visibility"`
	// Lost is true when a request failed, an event is missing or
	// duplicated, or ClickHouse did not catch up within Wait.
	Lost bool `json:"lost"`
}

// Visibility summarises probe latencies in milliseconds.
type Visibility struct {
	Samples  int     `json:"samples"`
	P50      float64 `json:"p50_ms"`
	P90      float64 `json:"p90_ms"`
	P99      float64 `json:"p99_ms"`
	Max      float64 `json:"max_ms"`
	TimedOut int     `json:"timed_out"` // not visible within VisibilityTimeout
	Skipped  int     `json:"skipped"`   // not probed: too many probes in flight
}

// eventStore is where E2E looks for the events of a run: ClickHouse in
// production, the fake API in tests.
type eventStore interface {
	// Rows returns how many rows have an event id starting with prefix
	// (duplicates included): cheap enough to poll.
	Rows(ctx context.Context, prefix string, since time.Time) (uint64, error)
	// Distinct returns how many distinct event ids start with prefix.
	Distinct(ctx context.Context, prefix string, since time.Time) (uint64, error)
	// Counts returns rows per event id for ids starting with prefix.
	Counts(ctx context.Context, prefix string, since time.Time) (map[string]uint64, error)
	Close() error
}

func (c *E2EConfig) setDefaults() {
	c.Scenario = "batch"
	c.RunConfig.setDefaults()
	if c.ClickHouse == "" {
		c.ClickHouse = DefaultClickHouse
	}
	if c.Database == "" {
		c.Database = DefaultDatabase
	}
	if c.CHUser == "" {
		c.CHUser = "default"
	}
	if c.Wait == 0 {
		c.Wait = DefaultWait
	}
	if c.SampleEvery == 0 {
		c.SampleEvery = DefaultSampleEvery
	}
	if c.VisibilityTimeout == 0 {
		c.VisibilityTimeout = DefaultVisibilityTimeout
	}
}

// E2E sends batches for cfg.Duration, then waits until ClickHouse holds
// every accepted event and checks that each is there exactly once. Like
// Run, a lossy run returns a summary with Lost set and a nil error.
func E2E(ctx context.Context, cfg E2EConfig) (E2ESummary, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return E2ESummary{}, err
	}
	store, err := openClickHouse(ctx, cfg)
	if err != nil {
		return E2ESummary{}, err
	}
	defer store.Close()
	return e2e(ctx, cfg, store)
}

func (c *E2EConfig) validate() error {
	if err := c.RunConfig.validate(true); err != nil {
		return err
	}
	if c.Wait < 0 || c.VisibilityTimeout < 0 {
		return fmt.Errorf("--wait and --visibility-timeout must be positive")
	}
	if !validIdent(c.Database) {
		return fmt.Errorf("bad --database %q: want a plain identifier", c.Database)
	}
	host, _, err := net.SplitHostPort(c.ClickHouse)
	if err != nil {
		return fmt.Errorf("bad --clickhouse %q: want host:port", c.ClickHouse)
	}
	return checkLoopback("--clickhouse", host, c.AllowRemote)
}

func e2e(ctx context.Context, cfg E2EConfig, store eventStore) (E2ESummary, error) {
	g, err := newGenerator(cfg.RunConfig, true, max(cfg.SampleEvery, 0))
	if err != nil {
		return E2ESummary{}, err
	}
	pr := &prober{base: cfg.Target, timeout: cfg.VisibilityTimeout, client: &http.Client{Timeout: cfg.Timeout}, sem: make(chan struct{}, maxProbesInFlight)}
	tk := &tracker{g: g, onProbe: func(p *probe) { pr.start(ctx, p) }}
	client := newClient(cfg.Timeout, func(rt http.RoundTripper) http.RoundTripper { tk.next = rt; return tk })

	started := time.Now()
	run, err := attack(ctx, cfg.RunConfig, "e2e", g.targeter(scenarioMixes["batch"]), client, nil)
	if err != nil {
		return E2ESummary{}, err
	}
	attackEnd := time.Now()
	pr.wg.Wait()

	s := E2ESummary{Run: run, RunID: g.runID, SessionItems: cfg.SessionItems, Visibility: pr.summary()}
	accepted := tk.acceptedIDs()
	s.AcceptedEvents = len(accepted)
	prefix := "lt-" + g.runID + "-"
	since := started.Add(-10 * time.Minute) // client ts may lag; rows are found by id anyway

	// Poll the cheap row count; once it is high enough, confirm with the
	// distinct count. The run was complete when the confirming poll began
	// (a query sees the data as of its start), not when it returned.
	deadline := time.Now().Add(cfg.Wait)
	var doneAt time.Time
	for {
		polled := time.Now()
		n, err := store.Rows(ctx, prefix, since)
		if err == nil && n >= uint64(len(accepted)) {
			n, err = store.Distinct(ctx, prefix, since)
		}
		if err != nil {
			return s, fmt.Errorf("cannot count events of run %s: %w", g.runID, err)
		}
		if n >= uint64(len(accepted)) {
			s.Complete, doneAt = true, polled
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
	if !s.Complete {
		doneAt = time.Now()
	}
	s.DrainSeconds = doneAt.Sub(attackEnd).Seconds()
	if d := doneAt.Sub(started).Seconds(); d > 0 && s.Complete {
		s.EventsPerSec = float64(len(accepted)) / d
	}
	// Count with a fresh context: an interrupted run still deserves its check.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	counts, err := store.Counts(cctx, prefix, since)
	if err != nil {
		return s, fmt.Errorf("cannot read events of run %s: %w", g.runID, err)
	}
	s.Check = Check(accepted, counts)
	s.MissingCount, s.DuplicatedCount = len(s.Check.Missing), len(s.Check.Duplicated)
	truncate(&s.Check)
	s.Lost = run.Lost || !s.Check.OK() || !s.Complete
	if cfg.ReportDir != "" {
		if err := writeJSON(cfg.ReportDir+"/e2e.json", s); err != nil {
			return s, err
		}
	}
	return s, nil
}

func truncate(r *CheckResult) {
	if len(r.Missing) > listCap {
		r.Missing = r.Missing[:listCap]
	}
	if len(r.Unexpected) > listCap {
		r.Unexpected = r.Unexpected[:listCap]
	}
	for id := range r.Duplicated {
		if len(r.Duplicated) <= listCap {
			break
		}
		delete(r.Duplicated, id)
	}
}

// tracker sits in the attack's HTTP transport: it strips the write's
// sequence header and, on 202, records the write's event ids and starts
// its probe. It sees the 202 at the moment it arrives, which is where
// visibility latency starts.
type tracker struct {
	g       *generator
	next    http.RoundTripper
	onProbe func(*probe)

	mu       sync.Mutex
	accepted []*write
}

// RoundTrip implements http.RoundTripper.
func (tk *tracker) RoundTrip(req *http.Request) (*http.Response, error) {
	key := req.Header.Get(trackHeader)
	if key == "" {
		return tk.next.RoundTrip(req)
	}
	req = req.Clone(req.Context())
	req.Header.Del(trackHeader)
	resp, err := tk.next.RoundTrip(req)
	v, ok := tk.g.pending.LoadAndDelete(key)
	if err != nil || !ok || resp.StatusCode != http.StatusAccepted {
		return resp, err
	}
	w := v.(*write)
	tk.mu.Lock()
	tk.accepted = append(tk.accepted, w)
	tk.mu.Unlock()
	if w.probe != nil && tk.onProbe != nil {
		w.probe.accepted = time.Now()
		tk.onProbe(w.probe)
	}
	return resp, nil
}

func (tk *tracker) acceptedIDs() []string {
	tk.mu.Lock()
	defer tk.mu.Unlock()
	var ids []string
	for _, w := range tk.accepted {
		ids = append(ids, w.ids()...)
	}
	return ids
}

// prober polls GET /v1/history for each probe until its event shows.
type prober struct {
	base    string
	timeout time.Duration
	client  *http.Client
	sem     chan struct{}
	wg      sync.WaitGroup

	mu        sync.Mutex
	latencies []time.Duration
	timedOut  int
	skipped   int
}

func (pr *prober) start(ctx context.Context, p *probe) {
	select {
	case pr.sem <- struct{}{}:
	default:
		pr.mu.Lock()
		pr.skipped++
		pr.mu.Unlock()
		return
	}
	pr.wg.Add(1)
	go func() {
		defer pr.wg.Done()
		defer func() { <-pr.sem }()
		d, ok := pr.poll(ctx, p)
		pr.mu.Lock()
		if ok {
			pr.latencies = append(pr.latencies, d)
		} else {
			pr.timedOut++
		}
		pr.mu.Unlock()
	}()
}

const pollInterval = 10 * time.Millisecond

func (pr *prober) poll(ctx context.Context, p *probe) (time.Duration, bool) {
	ctx, cancel := context.WithDeadline(ctx, p.accepted.Add(pr.timeout))
	defer cancel()
	for {
		if visible(ctx, pr.client, pr.base, p) {
			return time.Since(p.accepted), true
		}
		select {
		case <-ctx.Done():
			return 0, false
		case <-time.After(pollInterval):
		}
	}
}

// visible reports whether the probe's item is in the user's first history
// page with updated_at at least the probe's ts (a later report of the same
// item also proves the probe was applied: per-user order is kept).
func visible(ctx context.Context, c *http.Client, base string, p *probe) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/history?limit=20", nil)
	if err != nil {
		return false
	}
	req.Header.Set("Authorization", p.token)
	resp, err := c.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, resp.Body)
		return false
	}
	var page historyPage
	if err := decodeJSON(resp.Body, &page); err != nil {
		return false
	}
	for _, it := range page.Items {
		if it.Biz == p.biz && it.ItemID == p.item && it.UpdatedAt >= p.ts {
			return true
		}
	}
	return false
}

func (pr *prober) summary() Visibility {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	v := Visibility{Samples: len(pr.latencies), TimedOut: pr.timedOut, Skipped: pr.skipped}
	if len(pr.latencies) > 0 {
		v.P50 = ms(quantile(pr.latencies, 0.50))
		v.P90 = ms(quantile(pr.latencies, 0.90))
		v.P99 = ms(quantile(pr.latencies, 0.99))
		v.Max = ms(quantile(pr.latencies, 1))
	}
	return v
}

// TextE2E writes s for a terminal.
func TextE2E(w io.Writer, s E2ESummary) {
	TextSummary(w, s.Run)
	fmt.Fprintf(w, "run %s: %d events accepted, %d in ClickHouse, complete=%v after %.1fs drain\n",
		s.RunID, s.AcceptedEvents, s.Check.Found, s.Complete, s.DrainSeconds)
	fmt.Fprintf(w, "end-to-end: %.0f events/s\n", s.EventsPerSec)
	v := s.Visibility
	fmt.Fprintf(w, "visibility (202 -> GET /v1/history), %d samples: p50 %.1f ms  p90 %.1f ms  p99 %.1f ms  max %.1f ms  (timed out %d, skipped %d)\n",
		v.Samples, v.P50, v.P90, v.P99, v.Max, v.TimedOut, v.Skipped)
	fmt.Fprintf(w, "missing: %d  duplicated: %d  unexpected (client timeouts that landed): %d\n",
		s.MissingCount, s.DuplicatedCount, len(s.Check.Unexpected))
	for i, id := range s.Check.Missing {
		if i == 10 {
			break
		}
		fmt.Fprintf(w, "  missing %s\n", id)
	}
	n := 0
	for id, c := range s.Check.Duplicated {
		if n == 10 {
			break
		}
		n++
		fmt.Fprintf(w, "  duplicated %s x%d\n", id, c)
	}
	if s.Lost {
		fmt.Fprintln(w, "LOST: the pipeline did not deliver every accepted event exactly once (or a request failed)")
	}
}

var _ http.RoundTripper = (*tracker)(nil)
