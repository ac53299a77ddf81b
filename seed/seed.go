package seed

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/onair/onair/ingest"
	"github.com/onair/onair/internal/apiclient"
	"github.com/onair/onair/internal/authtoken"
	"github.com/onair/onair/internal/chdb"
)

// Config configures Run.
type Config struct {
	// Gen is the traffic to send.
	Gen GenConfig
	// Target is onair's base URL, e.g. "http://127.0.0.1:8080". Required.
	Target string
	// Secret signs the admin and service tokens. Required.
	Secret []byte
	// Rate caps the events posted per second; 0 = as fast as onair takes
	// them.
	Rate int
	// Duration stops the posting after this long; 0 = until Gen.Events.
	Duration time.Duration
	// Workers is the batches in flight; 0 = 8.
	Workers int
	// ClickHouse, when set, is where Run checks that every acknowledged
	// event arrived exactly once (database Database). nil = no check.
	ClickHouse driver.Conn
	Database   string
	// VerifyTimeout bounds the wait for ClickHouse to hold every event;
	// 0 = 2 minutes.
	VerifyTimeout time.Duration
	// Progress receives a progress bar (carriage returns; one line per
	// second when Terminal is false); nil = none.
	Progress io.Writer
	Terminal bool
	// Log receives failures with their reasons; nil = discard.
	Log *slog.Logger
	// RunID tags this run's events (device "seed-<RunID>-<platform>");
	// "" = random.
	RunID string
	// Client is the HTTP client; nil = one with a 30 s timeout.
	Client *http.Client
}

// Defaults of Config's zero fields.
const (
	DefaultWorkers       = 8
	DefaultVerifyTimeout = 2 * time.Minute
	batchSize            = 1000 // the API's limit per POST /v1/events
	serviceUser          = 999_999_999
	adminUser            = 999_999_998
)

func (c *Config) validate() error {
	g := c.Gen
	switch {
	case c.Target == "":
		return errors.New("target URL is required")
	case len(c.Secret) == 0:
		return errors.New("auth secret is required")
	case g.Events <= 0:
		return fmt.Errorf("--events must be > 0, got %d", g.Events)
	case g.Users < 0 || g.Items < 0 || g.Stations < 0 || g.Rooms < 0:
		return errors.New("--users, --items, --stations and --rooms must be > 0")
	case g.Days < 0 || g.Days > MaxDays:
		return fmt.Errorf("--days must be 1..%d (the API rejects events more than 30 days old), got %d", MaxDays, g.Days)
	case c.Rate < 0:
		return fmt.Errorf("--rate must be >= 0 events/s (0 = unlimited), got %d", c.Rate)
	case c.Duration < 0:
		return fmt.Errorf("--duration must be >= 0, got %s", c.Duration)
	case c.Workers < 0:
		return fmt.Errorf("workers must be >= 0, got %d", c.Workers)
	case c.ClickHouse != nil && !chdb.ValidIdent(c.Database):
		return fmt.Errorf("invalid ClickHouse database %q", c.Database)
	}
	return nil
}

// Summary is what a run did.
type Summary struct {
	RunID string `json:"run_id"`
	// Demo reports each admin part: catalog, stations, rooms, room routes.
	Demo []Part `json:"demo"`
	// Generated is the events generated; Acked those answered 202.
	Generated int `json:"generated"`
	Acked     int `json:"acked"`
	Requests  int `json:"requests"`
	Retries   int `json:"retries"`
	// Stopped reports that Duration ended the posting early.
	Stopped bool          `json:"stopped"`
	Elapsed time.Duration `json:"elapsed_ns"`
	// Rate is Acked per second of posting.
	Rate float64 `json:"events_per_second"`
	// Verified reports that ClickHouse was checked; InClickHouse is what
	// it held of this run, Lost and Extra the differences to Acked.
	Verified     bool   `json:"verified"`
	InClickHouse uint64 `json:"in_clickhouse"`
	Lost         int    `json:"lost"`
	Extra        int    `json:"extra"`
}

// Part is the outcome of one demo step.
type Part struct {
	Name   string `json:"name"`
	Status string `json:"status"`
	Failed bool   `json:"failed"`
}

// ErrLost is returned (wrapped) when ClickHouse holds fewer events of the
// run than onair acknowledged.
var ErrLost = errors.New("acknowledged events missing from ClickHouse")

// Run seeds onair: the demo catalog, stations and rooms, then the events,
// then (with Config.ClickHouse) checks that every acknowledged event
// arrived. It returns an error when anything was lost, when posting failed
// or when a demo step failed other than by its route being absent.
func Run(ctx context.Context, cfg Config) (Summary, error) {
	if err := cfg.validate(); err != nil {
		return Summary{}, err
	}
	cfg.Gen = cfg.Gen.withDefaults()
	if cfg.Workers == 0 {
		cfg.Workers = DefaultWorkers
	}
	if cfg.VerifyTimeout == 0 {
		cfg.VerifyTimeout = DefaultVerifyTimeout
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: 30 * time.Second}
	}
	if cfg.RunID == "" {
		var b [4]byte
		_, _ = rand.Read(b[:])
		cfg.RunID = hex.EncodeToString(b[:])
	}
	s := Summary{RunID: cfg.RunID}
	admin, err := authtoken.Sign(cfg.Secret, adminUser, authtoken.RoleAdmin, 24*time.Hour)
	if err != nil {
		return s, err
	}
	service, err := authtoken.Sign(cfg.Secret, serviceUser, authtoken.RoleService, 24*time.Hour)
	if err != nil {
		return s, err
	}
	api := apiclient.Client{Base: cfg.Target, HTTP: cfg.Client}
	r := &runner{cfg: cfg, admin: api.WithToken(admin), service: api.WithToken(service)}
	s.Demo = append(r.demo(ctx), r.users(ctx))
	err = r.events(ctx, &s)
	s.Demo = append(s.Demo, r.roomRoutes(ctx))
	if err == nil && cfg.ClickHouse != nil {
		err = r.verify(ctx, &s)
	}
	for _, p := range s.Demo {
		if p.Failed && err == nil {
			err = fmt.Errorf("demo %s: %s", p.Name, p.Status)
		}
	}
	return s, err
}

type runner struct {
	cfg            Config
	admin, service apiclient.Client
	gifts          int      // gift events so far, for their event ids
	rooms          []uint64 // the demo rooms' ids, in order (demo)
	// viewers are the demo users signed in by users(), for roomRoutes.
	viewers []apiclient.Client
	lastErr error // the last failed demo call, for users()
}

// Device tags this run's events, so verify can count them.
func (r *runner) device(user uint64) string {
	return "seed-" + r.cfg.RunID + "-" + [...]string{"ios", "android", "web"}[user%3]
}

// events generates and posts the traffic in batches of 1000.
func (r *runner) events(ctx context.Context, s *Summary) error {
	start := time.Now()
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if r.cfg.Duration > 0 {
		var c2 context.CancelFunc
		pctx, c2 = context.WithTimeout(pctx, r.cfg.Duration)
		defer c2()
	}
	p := r.startPoster(ctx, cancel)
	stopBar := r.progressBar(&p.acked, start)
	buf := make([]byte, 0, 200*batchSize)
	k, generated := 0, 0
	send := func() bool {
		if r.cfg.Rate > 0 { // pace: batch i leaves at start + i·1000/rate
			due := start.Add(time.Duration(float64(generated-k) / float64(r.cfg.Rate) * float64(time.Second)))
			select {
			case <-time.After(time.Until(due)):
			case <-pctx.Done():
				return false
			}
		}
		select {
		case p.batches <- batch{append(buf, "]}"...), k}:
		case <-pctx.Done():
			return false
		}
		buf, k = make([]byte, 0, 200*batchSize), 0
		return true
	}
	Generate(r.cfg.Gen, func(e *ingest.Event) bool {
		if pctx.Err() != nil {
			return false
		}
		if k == 0 {
			buf = append(buf, `{"events":[`...)
		} else {
			buf = append(buf, ',')
		}
		buf = r.appendEvent(buf, e)
		k++
		generated++
		return k < batchSize || send()
	})
	if k > 0 && pctx.Err() == nil {
		send()
	}
	postErr := p.close()
	stopBar()
	s.Generated, s.Acked = generated, int(p.acked.Load())
	s.Requests, s.Retries = int(p.requests.Load()), int(p.retries.Load())
	s.Elapsed = time.Since(start)
	s.Rate = float64(s.Acked) / s.Elapsed.Seconds()
	s.Stopped = postErr == nil && ctx.Err() == nil && pctx.Err() != nil
	if postErr != nil {
		return fmt.Errorf("posting events: %w", postErr)
	}
	return ctx.Err()
}

// batch is one POST /v1/events body and its event count.
type batch struct {
	body []byte
	n    int
}

// poster posts batches with Config.Workers goroutines and counts them.
type poster struct {
	batches                  chan batch
	acked, requests, retries atomic.Int64
	wg                       sync.WaitGroup
	once                     sync.Once
	err                      error // the first failure; it calls stop
}

// startPoster starts the workers. They post with ctx, not the duration's
// context, so a batch under way when the duration ends completes and Acked
// stays exact; the first failure calls stop.
func (r *runner) startPoster(ctx context.Context, stop func()) *poster {
	p := &poster{batches: make(chan batch, r.cfg.Workers)}
	for range r.cfg.Workers {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			for b := range p.batches {
				n, err := r.service.PostEvents(ctx, b.body)
				p.requests.Add(int64(n + 1))
				p.retries.Add(int64(n))
				if err != nil {
					r.cfg.Log.Error("seed batch failed", "events", b.n, "err", err)
					p.once.Do(func() { p.err = err; stop() })
					continue
				}
				p.acked.Add(int64(b.n))
			}
		}()
	}
	return p
}

// close waits for the batches sent so far and returns the first failure.
func (p *poster) close() error {
	close(p.batches)
	p.wg.Wait()
	return p.err
}

// verify waits until ClickHouse holds as many of this run's events as
// onair acknowledged (or VerifyTimeout passes).
func (r *runner) verify(ctx context.Context, s *Summary) error {
	q := "SELECT count() FROM " + r.cfg.Database + ".events WHERE device LIKE 'seed-" + r.cfg.RunID + "-%'"
	deadline := time.Now().Add(r.cfg.VerifyTimeout)
	for {
		var n uint64
		if err := r.cfg.ClickHouse.QueryRow(ctx, q).Scan(&n); err != nil {
			return fmt.Errorf("cannot count the run's events in ClickHouse: %w", err)
		}
		s.InClickHouse, s.Verified = n, true
		if n >= uint64(s.Acked) || time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	s.Lost = max(0, s.Acked-int(s.InClickHouse))
	s.Extra = max(0, int(s.InClickHouse)-s.Acked)
	if s.Lost > 0 {
		return fmt.Errorf("%w: %d of %d after %s", ErrLost, s.Lost, s.Acked, r.cfg.VerifyTimeout)
	}
	return nil
}

// progressBar draws the bar until the returned func is called.
func (r *runner) progressBar(acked *atomic.Int64, start time.Time) (stop func()) {
	w := r.cfg.Progress
	if w == nil {
		return func() {}
	}
	every := time.Second
	if r.cfg.Terminal {
		every = 200 * time.Millisecond
	}
	done, finished := make(chan struct{}), make(chan struct{})
	draw := func(last bool) {
		n, total := int(acked.Load()), r.cfg.Gen.Events
		const width = 30
		fill := min(width, n*width/max(total, 1))
		bar := make([]byte, width)
		for i := range bar {
			bar[i] = '.'
			if i < fill {
				bar[i] = '#'
			}
		}
		rate := float64(n) / max(time.Since(start).Seconds(), 1e-3)
		line := fmt.Sprintf("events [%s] %3d%% %d/%d  %.0f events/s", bar, n*100/max(total, 1), n, total, rate)
		if r.cfg.Terminal {
			fmt.Fprint(w, "\r"+line)
			if last {
				fmt.Fprintln(w)
			}
			return
		}
		fmt.Fprintln(w, line)
	}
	go func() {
		defer close(finished)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				draw(false)
			case <-done:
				draw(true)
				return
			}
		}
	}()
	return func() { close(done); <-finished }
}

// appendEvent appends e as JSON for POST /v1/events.
func (r *runner) appendEvent(b []byte, e *ingest.Event) []byte {
	b = append(b, `{"type":"`...)
	b = append(b, e.Type.String()...)
	b = append(b, `","user_id":`...)
	b = strconv.AppendUint(b, e.UserID, 10)
	if e.Biz != ingest.BizNone {
		b = append(b, `,"biz":"`...)
		b = append(b, e.Biz.String()...)
		b = append(b, '"')
	}
	num := func(name string, v uint64) {
		if v != 0 {
			b = append(b, `,"`...)
			b = append(b, name...)
			b = append(b, `":`...)
			b = strconv.AppendUint(b, v, 10)
		}
	}
	num("item_id", e.ItemID)
	num("position_ms", e.PositionMs)
	num("duration_ms", e.DurationMs)
	num("listened_ms", e.ListenedMs)
	num("station_id", e.StationID)
	num("room_id", e.RoomID)
	num("anchor_id", e.AnchorID)
	num("gift_id", e.GiftID)
	num("value", e.Value)
	if e.Type == ingest.TypeProgress && e.PositionMs == 0 {
		b = append(b, `,"position_ms":0`...) // a valid report: send it
	}
	if e.Text != "" {
		b = strconv.AppendQuote(append(b, `,"text":`...), e.Text)
	}
	b = append(b, `,"ts":`...)
	b = strconv.AppendInt(b, e.TS, 10)
	b = append(b, `,"device":"`...)
	b = append(b, r.device(e.UserID)...)
	if e.Type == ingest.TypeGift {
		// money: a retried batch must not count a gift twice
		r.gifts++
		b = append(b, `","event_id":"g`...)
		b = append(b, r.cfg.RunID...)
		b = append(b, '-')
		b = strconv.AppendInt(b, int64(r.gifts), 36)
	}
	return append(b, `"}`...)
}
