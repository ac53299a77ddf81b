package loadtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/onair/onair/internal/authtoken"
)

// SlowlorisConfig configures `onair loadtest slowloris`.
type SlowlorisConfig struct {
	Target, Ops string
	AllowRemote bool
	TokenSecret []byte
	Conns       int           // stalled uploads held at once
	Length      int           // the Content-Length each one announces
	ReadTimeout time.Duration // the server's --http-read-timeout
	Slack       time.Duration // allowed beyond ReadTimeout
	Dialers     int
	Progress    io.Writer
}

// SlowlorisSummary is one run's row.
type SlowlorisSummary struct {
	Conns, Opened int
	// Server memory (go_memstats_heap_inuse_bytes + stack_inuse_bytes, and
	// process_resident_memory_bytes) before the first connection and the
	// highest seen while the uploads were stalled.
	HeapStackBefore, HeapStackPeak float64
	RSSBefore, RSSPeak             float64
	ClosedInTime                   int           // closed by the server within ReadTimeout + Slack
	Slowest                        time.Duration // the latest close, from the stalled byte
	Statuses                       map[int]int   // replies the server sent before closing (0: none)
}

func parseSlowloris(args []string, stderr io.Writer, getenv func(string) string, readFile func(string) ([]byte, error)) (SlowlorisConfig, error) {
	var cfg SlowlorisConfig
	var secret string
	fs := newFlagSet("slowloris", stderr)
	fs.StringVar(&cfg.Target, "target", DefaultTarget, "base URL of onair's HTTP API")
	fs.StringVar(&cfg.Ops, "ops", DefaultOps, "base URL of onair's ops listener (--ops-addr), for the server's memory from /metrics")
	fs.BoolVar(&cfg.AllowRemote, "allow-remote", false, "allow non-loopback targets")
	fs.StringVar(&secret, "token-secret", "", "HS256 token secret (default $ONAIR_AUTH_SECRET, else "+SecretFile+"): each upload is a signed-in user's POST /v1/events, so the server reads its body")
	fs.IntVar(&cfg.Conns, "conns", 1000, "stalled uploads held at once")
	fs.IntVar(&cfg.Length, "length", 1<<20, "Content-Length each upload announces (it sends one byte of it)")
	fs.DurationVar(&cfg.ReadTimeout, "read-timeout", 30*time.Second, "the server's --http-read-timeout: every upload must be closed within it plus --slack")
	fs.DurationVar(&cfg.Slack, "slack", 5*time.Second, "allowed beyond --read-timeout")
	fs.IntVar(&cfg.Dialers, "dialers", 64, "connections opened at once")
	if err := parseArgs(fs, args); err != nil {
		return cfg, err
	}
	var err error
	if cfg.TokenSecret, err = resolveSecret(secret, getenv, readFile); err != nil {
		return cfg, err
	}
	switch {
	case cfg.Conns < 1:
		return cfg, fmt.Errorf("--conns must be >= 1, got %d", cfg.Conns)
	case cfg.Length < 2:
		return cfg, fmt.Errorf("--length must be >= 2, got %d", cfg.Length)
	case cfg.ReadTimeout <= 0 || cfg.ReadTimeout+cfg.Slack > MaxDuration:
		return cfg, fmt.Errorf("--read-timeout must be > 0 and with --slack <= %s", MaxDuration)
	case cfg.Dialers < 1:
		return cfg, fmt.Errorf("--dialers must be >= 1, got %d", cfg.Dialers)
	}
	cfg.Progress = stderr
	cfg.Target = strings.TrimRight(cfg.Target, "/")
	cfg.Ops = strings.TrimRight(cfg.Ops, "/")
	return cfg, checkTarget(cfg.Target, cfg.AllowRemote)
}

// slowUpload is one stalled upload: when its byte went out and when the
// server closed it (zero: not within the limit).
type slowUpload struct {
	conn   net.Conn
	sent   time.Time
	closed time.Time
	status int
}

// Slowloris holds cfg.Conns uploads that announce cfg.Length bytes and send
// one, samples the server's memory before and while they are stalled, and
// waits for the server to close each (its read timeout).
func Slowloris(ctx context.Context, cfg SlowlorisConfig) (SlowlorisSummary, error) {
	s := SlowlorisSummary{Conns: cfg.Conns, Statuses: map[int]int{}}
	u, err := url.Parse(cfg.Target)
	if err != nil {
		return s, err
	}
	before, err := slowMemory(ctx, cfg.Ops)
	if err != nil {
		return s, err
	}
	s.HeapStackBefore, s.RSSBefore = before.heap+before.stack, before.rss
	s.HeapStackPeak, s.RSSPeak = s.HeapStackBefore, s.RSSBefore

	ups := make([]*slowUpload, cfg.Conns)
	var next, opened atomic.Int64
	var wg sync.WaitGroup
	var firstErr error
	var errOnce sync.Once
	for range cfg.Dialers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= cfg.Conns || ctx.Err() != nil {
					return
				}
				up, err := openSlowUpload(ctx, u.Host, cfg, uint64(ltViewer0+i))
				if err != nil {
					errOnce.Do(func() { firstErr = err })
					continue
				}
				ups[i] = up
				opened.Add(1)
			}
		}()
	}
	wg.Wait()
	s.Opened = int(opened.Load())
	if s.Opened == 0 {
		return s, fmt.Errorf("no upload opened: %w", firstErr)
	}
	if firstErr != nil {
		fmt.Fprintf(cfg.Progress, "slowloris: %d of %d uploads opened; first failure: %v\n", s.Opened, cfg.Conns, firstErr)
	}

	// Each upload waits for the server to close it; memory is sampled
	// meanwhile, while none has been closed yet.
	var closes atomic.Int64
	var rw sync.WaitGroup
	for _, up := range ups {
		if up == nil {
			continue
		}
		rw.Add(1)
		go func() {
			defer rw.Done()
			up.wait(cfg.ReadTimeout + cfg.Slack)
			closes.Add(1)
		}()
	}
	t := time.NewTicker(250 * time.Millisecond)
	for sampled := 0; closes.Load() == 0 && sampled < 8 && ctx.Err() == nil; sampled++ {
		<-t.C
		m, err := slowMemory(ctx, cfg.Ops)
		if err != nil {
			fmt.Fprintf(cfg.Progress, "slowloris: %v\n", err)
			continue
		}
		s.HeapStackPeak = max(s.HeapStackPeak, m.heap+m.stack)
		s.RSSPeak = max(s.RSSPeak, m.rss)
	}
	t.Stop()
	if closes.Load() > 0 {
		fmt.Fprintf(cfg.Progress, "slowloris: %d uploads closed before the memory samples ended: the peak may be low\n", closes.Load())
	}
	rw.Wait()
	for _, up := range ups {
		if up == nil {
			continue
		}
		s.Statuses[up.status]++
		if !up.closed.IsZero() {
			s.ClosedInTime++
			s.Slowest = max(s.Slowest, up.closed.Sub(up.sent))
		}
	}
	return s, ctx.Err()
}

func openSlowUpload(ctx context.Context, host string, cfg SlowlorisConfig, user uint64) (*slowUpload, error) {
	tok, err := authtoken.Sign(cfg.TokenSecret, user, "", time.Hour)
	if err != nil {
		return nil, err
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return nil, err
	}
	req := "POST /v1/events HTTP/1.1\r\nHost: " + host + "\r\nAuthorization: Bearer " + tok +
		"\r\nContent-Type: application/json\r\nContent-Length: " + fmt.Sprint(cfg.Length) + "\r\n\r\n["
	if _, err := io.WriteString(c, req); err != nil {
		c.Close()
		return nil, err
	}
	return &slowUpload{conn: c, sent: time.Now()}, nil
}

// wait reads until the server closes the connection or limit passes since
// the byte was sent; a reply's status line is kept.
func (up *slowUpload) wait(limit time.Duration) {
	defer up.conn.Close()
	_ = up.conn.SetReadDeadline(up.sent.Add(limit))
	buf := make([]byte, 512)
	var got []byte
	for {
		n, err := up.conn.Read(buf)
		if len(got) < 64 {
			got = append(got, buf[:n]...)
		}
		if err == nil {
			continue
		}
		var ne net.Error
		if !(errors.As(err, &ne) && ne.Timeout()) {
			up.closed = time.Now()
		}
		break
	}
	if line, _, ok := strings.Cut(string(got), "\r\n"); ok {
		if f := strings.Fields(line); len(f) >= 2 {
			fmt.Sscan(f[1], &up.status)
		}
	}
}

// slowMemory reads heap in use, stacks in use and RSS from /metrics (after a
// GC when the server runs with --pprof, as serverMemory).
func slowMemory(ctx context.Context, ops string) (memSample, error) {
	var m memSample
	if req, err := http.NewRequestWithContext(ctx, "GET", ops+"/debug/pprof/heap?gc=1", nil); err == nil {
		if resp, err := metricsClient.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			m.forced = resp.StatusCode == http.StatusOK
		}
	}
	g, err := readGauges(ctx, metricsClient, ops, "go_memstats_heap_inuse_bytes", "go_memstats_stack_inuse_bytes", "process_resident_memory_bytes")
	if err != nil {
		return m, err
	}
	if _, ok := g["go_memstats_heap_inuse_bytes"]; !ok {
		return m, fmt.Errorf("%s/metrics has no go_memstats_heap_inuse_bytes: is it onair's ops listener?", ops)
	}
	m.heap, m.stack, m.rss = g["go_memstats_heap_inuse_bytes"], g["go_memstats_stack_inuse_bytes"], g["process_resident_memory_bytes"]
	return m, nil
}

// TextSlowloris prints the summary and its table row.
func TextSlowloris(w io.Writer, cfg SlowlorisConfig, s SlowlorisSummary) {
	const mib = 1 << 20
	per := 0.0
	if s.Opened > 0 {
		per = (s.HeapStackPeak - s.HeapStackBefore) / float64(s.Opened)
	}
	codes := make([]int, 0, len(s.Statuses))
	for c := range s.Statuses {
		codes = append(codes, c)
	}
	sort.Ints(codes)
	var st []string
	for _, c := range codes {
		st = append(st, fmt.Sprintf("%d×%d", s.Statuses[c], c))
	}
	fmt.Fprintf(w, "slowloris: %d of %d uploads of %d announced bytes stalled after 1; replies before the close (status×count, 0 = none): %s\n",
		s.Opened, s.Conns, cfg.Length, strings.Join(st, " "))
	fmt.Fprintln(w, "| stalled uploads | heap+stacks before → peak | per upload | RSS before → peak | closed within read timeout + slack | slowest close |")
	fmt.Fprintln(w, "| --- | --- | --- | --- | --- | --- |")
	fmt.Fprintf(w, "| %d | %.1f → %.1f MiB (+%.1f MiB) | %.1f KiB | %.1f → %.1f MiB | %d of %d (%s + %s) | %s |\n",
		s.Opened, s.HeapStackBefore/mib, s.HeapStackPeak/mib, (s.HeapStackPeak-s.HeapStackBefore)/mib, per/1024,
		s.RSSBefore/mib, s.RSSPeak/mib, s.ClosedInTime, s.Opened, cfg.ReadTimeout, cfg.Slack, s.Slowest.Round(100*time.Millisecond))
}
