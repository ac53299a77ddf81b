package loadtest

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"sort"
	"strconv"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
	"github.com/tsenart/vegeta/v12/lib/plot"
)

// Run drives cfg.Scenario against cfg.Target for cfg.Duration and, when
// cfg.ReportDir is set, writes report.txt, results.bin, plot.html and
// summary.json there (with cfg.Rounds > 1, each round's files under
// round-N, and summary.json on top for the median round). A run in which
// any request failed returns a Summary with Lost set and a nil error: the
// caller decides the exit code.
func Run(ctx context.Context, cfg RunConfig) (Summary, error) {
	cfg.setDefaults()
	if err := cfg.validate(true); err != nil {
		return Summary{}, err
	}
	if cfg.Scenario == "radio" {
		if err := seedRadio(ctx, cfg); err != nil {
			return Summary{}, err
		}
	}
	var sd *SeedSummary
	if cfg.Seed {
		r, err := seed(ctx, cfg, newClient(cfg.Timeout, nil))
		if err != nil {
			return Summary{}, err
		}
		if cfg.Progress != nil {
			fmt.Fprintf(cfg.Progress, "[seed] %d users x %d items: posted in %.1fs, visible after %.1fs more\n",
				r.Users, r.ItemsPerUser, r.PostSeconds, r.VisibleSeconds)
		}
		sd = &r
	}
	g, err := newGenerator(cfg, false, 0)
	if err != nil {
		return Summary{}, err
	}
	n := max(cfg.Rounds, 1)
	runs := make([]Summary, 0, n)
	for i := 1; i <= n; i++ {
		if i > 1 && ctx.Err() != nil {
			break
		}
		rcfg := cfg
		if n > 1 && cfg.ReportDir != "" {
			rcfg.ReportDir = filepath.Join(cfg.ReportDir, "round-"+strconv.Itoa(i))
		}
		s, err := runRound(ctx, rcfg, g)
		if err != nil {
			return s, err
		}
		if n > 1 && cfg.Progress != nil {
			fmt.Fprintf(cfg.Progress, "[round %d/%d] %.0f ok/s, baseline %.0f ok/s: x%.3f",
				i, n, s.Throughput, s.Baseline.Throughput, s.VsBaseline.Throughput)
			if s.Ceiling != nil {
				fmt.Fprintf(cfg.Progress, "; ceiling %.0f ok/s: x%.3f", s.Ceiling.Throughput, s.VsCeiling.Throughput)
			}
			fmt.Fprintln(cfg.Progress)
		}
		runs = append(runs, s)
	}
	s := medianRound(runs)
	s.Seed = sd
	if (s.Baseline != nil || sd != nil) && cfg.ReportDir != "" {
		if err := writeJSON(cfg.ReportDir+"/summary.json", s); err != nil {
			return s, err
		}
	}
	return s, nil
}

// runRound is one round: the baseline when asked for, the scenario's
// attack, then the ceiling when asked for.
func runRound(ctx context.Context, cfg RunConfig, g *generator) (Summary, error) {
	var base *Summary
	if cfg.Baseline {
		bcfg := cfg
		if cfg.ReportDir != "" {
			bcfg.ReportDir = cfg.ReportDir + "/baseline"
		}
		b, err := Baseline(ctx, bcfg)
		if err != nil {
			return Summary{}, fmt.Errorf("baseline: %w", err)
		}
		base = &b
	}
	s, err := attack(ctx, cfg, cfg.Scenario, g.targeter(scenarioMixes[cfg.Scenario]), newClient(cfg.Timeout, nil), nil)
	if err != nil || base == nil {
		return s, err
	}
	s.Baseline = base
	s.VsBaseline = ratio(s, *base)
	if cfg.Ceiling {
		ccfg := cfg
		if cfg.ReportDir != "" {
			ccfg.ReportDir = cfg.ReportDir + "/ceiling"
		}
		c, err := ceiling(ctx, ccfg, g)
		if err != nil {
			return s, fmt.Errorf("ceiling: %w", err)
		}
		s.Ceiling = &c
		s.VsCeiling = ratio(s, c)
	}
	return s, nil
}

// medianRound is the round with the median throughput ratio, listing every
// round; a round that lost requests or was interrupted marks the result.
func medianRound(runs []Summary) Summary {
	if len(runs) == 1 {
		return runs[0]
	}
	rounds := make([]Round, len(runs))
	byRatio := make([]int, len(runs))
	lost, interrupted := false, false
	for i, r := range runs {
		rounds[i] = Round{Throughput: r.Throughput, BaselineThroughput: r.Baseline.Throughput, Ratio: r.VsBaseline.Throughput}
		if r.Ceiling != nil {
			rounds[i].CeilingThroughput, rounds[i].CeilingRatio = r.Ceiling.Throughput, r.VsCeiling.Throughput
		}
		byRatio[i] = i
		lost = lost || r.Lost
		interrupted = interrupted || r.Interrupted
	}
	sort.Slice(byRatio, func(a, b int) bool { return rounds[byRatio[a]].Ratio < rounds[byRatio[b]].Ratio })
	s := runs[byRatio[(len(runs)-1)/2]]
	s.Rounds, s.Lost, s.Interrupted = rounds, lost, interrupted
	return s
}

// newClient is the attack's HTTP client: no proxy and no redirects, so that
// load stays on the given target. wrap, when not nil, wraps the transport.
func newClient(timeout time.Duration, wrap func(http.RoundTripper) http.RoundTripper) *http.Client {
	dialer := &net.Dialer{KeepAlive: 30 * time.Second, Timeout: timeout}
	var rt http.RoundTripper = &http.Transport{
		Proxy:               nil,
		DialContext:         dialer.DialContext,
		MaxIdleConnsPerHost: vegeta.DefaultConnections,
		IdleConnTimeout:     30 * time.Second,
	}
	if wrap != nil {
		rt = wrap(rt)
	}
	return &http.Client{
		Timeout:       timeout,
		Transport:     rt,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// attack runs one vegeta attack and writes its report files. onResult, when
// not nil, sees every result before it is recorded.
func attack(ctx context.Context, cfg RunConfig, name string, tr vegeta.Targeter, client *http.Client, onResult func(*vegeta.Result)) (Summary, error) {
	rep, err := newReporter(cfg.ReportDir, name)
	if err != nil {
		return Summary{}, err
	}
	defer rep.abort()

	// Only failures' bodies are kept (report.go), and those are short: the
	// rest of a body is read and discarded, not buffered, so big responses
	// do not slow the load generator down more than small ones.
	opts := []func(*vegeta.Attacker){vegeta.Client(client), vegeta.MaxWorkers(uint64(cfg.Workers)), vegeta.MaxBody(maxKeptBody)}
	if cfg.Rate == 0 {
		opts = append(opts, vegeta.Workers(uint64(cfg.Workers)))
	} else {
		opts = append(opts, vegeta.Workers(uint64(min(cfg.Workers, vegeta.DefaultWorkers))))
	}
	atk := vegeta.NewAttacker(opts...)
	if cfg.CPUProfile && cfg.ReportDir != "" {
		stop, err := startCPUProfile(filepath.Join(cfg.ReportDir, name+".cpu.prof"))
		if err != nil {
			return Summary{}, err
		}
		defer stop()
	}
	pacer := vegeta.Rate{Freq: cfg.Rate, Per: time.Second}
	started := time.Now()
	results := atk.Attack(tr, pacer, cfg.Duration, name)

	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	interrupted := false
	done := ctx.Done()
loop:
	for {
		select {
		case r, ok := <-results:
			if !ok {
				break loop
			}
			if onResult != nil {
				onResult(r)
			}
			if err := rep.add(r, cfg.Batch); err != nil {
				atk.Stop()
				return Summary{}, err
			}
		case <-tick.C:
			rep.progress(cfg.Progress, time.Since(started), cfg.Duration)
		case <-done:
			// Stop sending, but keep draining: in-flight requests end
			// within the client timeout and still count.
			interrupted = true
			done = nil
			atk.Stop()
		}
	}
	if cfg.Progress != nil {
		rep.progress(cfg.Progress, time.Since(started), cfg.Duration)
		fmt.Fprintln(cfg.Progress)
	}
	s := rep.summary(cfg, name)
	s.Interrupted = interrupted
	if err := rep.finish(s); err != nil {
		return s, err
	}
	return s, nil
}

func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cannot create CPU profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cannot start CPU profile: %w", err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// maxKeptBody is how much of a response body a result keeps.
const maxKeptBody = 1024

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// ratio compares s with a baseline measured in the same process.
func ratio(s, base Summary) *Ratio {
	r := &Ratio{}
	if base.Throughput > 0 {
		r.Throughput = s.Throughput / base.Throughput
	}
	if base.Latencies.P50 > 0 {
		r.P50 = s.Latencies.P50 / base.Latencies.P50
	}
	if base.Latencies.P99 > 0 {
		r.P99 = s.Latencies.P99 / base.Latencies.P99
	}
	return r
}

// newPlot labels points by request kind and outcome, so a mixed run shows
// one line per endpoint.
func newPlot(name string) *plot.Plot {
	return plot.New(
		plot.Title("onair loadtest: "+name),
		plot.Downsample(4000),
		plot.Label(func(r *vegeta.Result) string {
			l := kindNames[kindOf(r.URL)]
			if r.Error != "" {
				return l + " ERROR"
			}
			return l + " OK"
		}),
	)
}
