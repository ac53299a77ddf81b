package loadtest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Soak defaults.
const (
	DefaultSoakInterval = time.Minute
	DefaultSoakWarmup   = 5 * time.Minute
	// DefaultSoakFlat is how much resident memory may spread after the
	// warm-up, as a fraction of its lowest sample.
	DefaultSoakFlat = 0.10
)

// SoakConfig describes `onair loadtest soak`: one scenario held for a long
// time, sampled every Interval.
type SoakConfig struct {
	// Run is the load: scenario (mixed by default), rate, users, items,
	// target, token secret. Run.Duration is the whole soak.
	Run RunConfig
	// Interval is one sample's span: the load runs in attacks of this
	// length, and after each the server's memory is read. 0: one minute.
	Interval time.Duration
	// Warmup is left out of the flatness verdict: caches, connection pools
	// and the aggregator's windows fill during it. 0: five minutes.
	Warmup time.Duration
	// Flat is the largest allowed spread of resident memory after the
	// warm-up, (max - min) / min. 0: DefaultSoakFlat.
	Flat float64
	// RedisAddr, when set, adds Redis' used_memory to every sample.
	RedisAddr string
	// Ops is the server's ops listener, whose /metrics is sampled; "":
	// DefaultOps.
	Ops string
	// Progress receives one line per sample; nil: none.
	Progress io.Writer
}

// SoakSample is one interval of a soak.
type SoakSample struct {
	// End is the time since the soak began, at the sample.
	End          time.Duration `json:"end_ns"`
	Requests     uint64        `json:"requests"`
	Failed       uint64        `json:"failed"`
	ServerErrors uint64        `json:"server_errors"` // 5xx answers and requests without an answer
	EventsPerSec float64       `json:"events_per_sec"`
	P99Ms        float64       `json:"p99_ms"`
	// RSSBytes, HeapInuseBytes and GoSysBytes are the server's
	// process_resident_memory_bytes, go_memstats_heap_inuse_bytes and
	// go_memstats_sys_bytes from its /metrics; RedisBytes is Redis'
	// used_memory (0 without RedisAddr).
	RSSBytes       uint64 `json:"rss_bytes"`
	HeapInuseBytes uint64 `json:"heap_inuse_bytes"`
	GoSysBytes     uint64 `json:"go_sys_bytes"`
	RedisBytes     uint64 `json:"redis_bytes"`
}

// SoakSummary is a soak's samples and verdict.
type SoakSummary struct {
	Scenario string       `json:"scenario"`
	Rate     int          `json:"rate"`
	Samples  []SoakSample `json:"samples"`
	// Spread is (max - min) / min of resident memory over the samples
	// after the warm-up; MaxRSSBytes is the highest sample of all.
	Spread      float64 `json:"rss_spread_after_warmup"`
	MaxRSSBytes uint64  `json:"max_rss_bytes"`
	// Problems lists why the soak failed; empty when it passed.
	Problems    []string `json:"problems"`
	Interrupted bool     `json:"interrupted,omitempty"`
}

// Soak holds cfg.Run's scenario for cfg.Run.Duration, in attacks of
// cfg.Interval, sampling the server's memory after each. It fails (in
// Problems) when resident memory spreads more than cfg.Flat after the
// warm-up, or when any request got a 5xx or no answer.
func Soak(ctx context.Context, cfg SoakConfig) (SoakSummary, error) {
	if cfg.Interval < 0 || cfg.Warmup < 0 {
		return SoakSummary{}, fmt.Errorf("--interval and --warmup must not be negative, got %s and %s", cfg.Interval, cfg.Warmup)
	}
	cfg.Interval = cmp.Or(cfg.Interval, DefaultSoakInterval)
	cfg.Warmup = cmp.Or(cfg.Warmup, DefaultSoakWarmup)
	if cfg.Flat <= 0 {
		cfg.Flat = DefaultSoakFlat
	}
	run := cfg.Run
	run.setDefaults()
	if err := run.validate(true); err != nil {
		return SoakSummary{}, err
	}
	if cfg.Interval > run.Duration {
		return SoakSummary{}, fmt.Errorf("--interval %s is longer than --duration %s", cfg.Interval, run.Duration)
	}
	if run.Seed {
		if _, err := seed(ctx, run, newClient(run.Timeout, nil)); err != nil {
			return SoakSummary{}, err
		}
	}
	g, err := newGenerator(run, false, 0)
	if err != nil {
		return SoakSummary{}, err
	}
	var rdb *redis.Client
	if cfg.RedisAddr != "" {
		rdb = redis.NewClient(&redis.Options{Addr: cfg.RedisAddr})
		defer rdb.Close()
	}
	client := newClient(run.Timeout, nil)
	slice := run
	slice.Duration, slice.Progress, slice.ReportDir = cfg.Interval, nil, ""
	sum := SoakSummary{Scenario: run.Scenario, Rate: run.Rate}
	start := time.Now()
	for time.Since(start)+cfg.Interval/2 < run.Duration && ctx.Err() == nil {
		s, err := attack(ctx, slice, run.Scenario, g.targeter(scenarioMixes[run.Scenario]), client, nil)
		if err != nil {
			return sum, err
		}
		sm := SoakSample{End: time.Since(start), Requests: s.Requests, Failed: s.Failed,
			EventsPerSec: s.EventsPerSec, P99Ms: s.Latencies.P99}
		for code, n := range s.StatusCodes {
			if code == "0" || strings.HasPrefix(code, "5") {
				sm.ServerErrors += uint64(n)
			}
		}
		if err := scrapeMemory(ctx, client, cmp.Or(strings.TrimRight(cfg.Ops, "/"), DefaultOps), &sm); err != nil {
			return sum, err
		}
		if rdb != nil {
			if sm.RedisBytes, err = redisUsedMemory(ctx, rdb); err != nil {
				return sum, err
			}
		}
		sum.Samples = append(sum.Samples, sm)
		sum.Interrupted = s.Interrupted
		if cfg.Progress != nil {
			writeSoakRow(cfg.Progress, sm)
		}
	}
	judgeSoak(&sum, cfg.Warmup, cfg.Flat)
	return sum, nil
}

// judgeSoak sets the spread and the problems of a finished soak.
func judgeSoak(sum *SoakSummary, warmup time.Duration, flat float64) {
	var lo, hi uint64
	n, errs := 0, uint64(0)
	for _, s := range sum.Samples {
		sum.MaxRSSBytes = max(sum.MaxRSSBytes, s.RSSBytes)
		errs += s.ServerErrors
		if s.End <= warmup {
			continue
		}
		if n == 0 || s.RSSBytes < lo {
			lo = s.RSSBytes
		}
		hi = max(hi, s.RSSBytes)
		n++
	}
	switch {
	case n < 2:
		sum.Problems = append(sum.Problems, fmt.Sprintf("only %d sample(s) after the %s warm-up: too short to judge", n, warmup))
	case lo > 0:
		sum.Spread = float64(hi-lo) / float64(lo)
		if sum.Spread > flat {
			sum.Problems = append(sum.Problems, fmt.Sprintf("resident memory spread %.1f%% after the warm-up (%s .. %s), over the %.0f%% allowed",
				100*sum.Spread, mib(lo), mib(hi), 100*flat))
		}
	}
	if errs > 0 {
		sum.Problems = append(sum.Problems, fmt.Sprintf("%d request(s) got a 5xx or no answer", errs))
	}
}

// scrapeMemory reads the server's memory gauges from its /metrics.
func scrapeMemory(ctx context.Context, client *http.Client, target string, s *SoakSample) error {
	want := map[string]*uint64{
		"process_resident_memory_bytes": &s.RSSBytes,
		"go_memstats_heap_inuse_bytes":  &s.HeapInuseBytes,
		"go_memstats_sys_bytes":         &s.GoSysBytes,
	}
	g, err := readGauges(ctx, client, target, slices.Collect(maps.Keys(want))...)
	if err != nil {
		return err
	}
	for name, p := range want {
		v, ok := g[name]
		if !ok {
			return fmt.Errorf("the server's /metrics lacks %s", name)
		}
		*p = uint64(v)
	}
	return nil
}

// redisUsedMemory reads used_memory from INFO memory.
func redisUsedMemory(ctx context.Context, rdb *redis.Client) (uint64, error) {
	info, err := rdb.Info(ctx, "memory").Result()
	if err != nil {
		return 0, fmt.Errorf("cannot read Redis' INFO memory: %w", err)
	}
	for line := range strings.SplitSeq(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
			return strconv.ParseUint(v, 10, 64)
		}
	}
	return 0, errors.New("redis INFO memory has no used_memory")
}

func mib(b uint64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }

const soakHeader = "| minute | requests | failed | 5xx | events/s | p99 ms | RSS | Go heap in use | Go sys | Redis |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"

func writeSoakRow(w io.Writer, s SoakSample) {
	fmt.Fprintf(w, "| %.1f | %d | %d | %d | %.0f | %.1f | %s | %s | %s | %s |\n", s.End.Minutes(), s.Requests, s.Failed,
		s.ServerErrors, s.EventsPerSec, s.P99Ms, mib(s.RSSBytes), mib(s.HeapInuseBytes), mib(s.GoSysBytes), mib(s.RedisBytes))
}

// TextSoak writes a soak's table and verdict.
func TextSoak(w io.Writer, s SoakSummary) {
	fmt.Fprintf(w, "soak: %s at %d requests/s, %d samples\n\n%s", s.Scenario, s.Rate, len(s.Samples), soakHeader)
	for _, sm := range s.Samples {
		writeSoakRow(w, sm)
	}
	fmt.Fprintf(w, "\nresident memory: max %s, spread after warm-up %.1f%%\n", mib(s.MaxRSSBytes), 100*s.Spread)
	if len(s.Problems) == 0 {
		fmt.Fprintln(w, "verdict: PASS (memory flat after the warm-up, no 5xx)")
		return
	}
	for _, p := range s.Problems {
		fmt.Fprintln(w, "verdict: FAIL:", p)
	}
}

func parseSoak(args []string, stderr io.Writer, getenv func(string) string, readFile func(string) ([]byte, error)) (SoakConfig, error) {
	var cfg SoakConfig
	var secret string
	fs := newFlagSet("soak", stderr)
	commonFlags(fs, &cfg.Run)
	targetFlags(fs, &cfg.Run, &secret)
	fs.StringVar(&cfg.Run.Scenario, "scenario", "mixed", "one of "+strings.Join(Scenarios(), ", "))
	fs.StringVar(&cfg.Run.ReportDir, "report", "", "report directory for soak.json (default var/loadtest/soak-<time>)")
	fs.BoolVar(&cfg.Run.Seed, "seed", true, "first give every user --seed-items unfinished items")
	fs.IntVar(&cfg.Run.SeedItems, "seed-items", DefaultSeedItems, "items seeded per user, 1..100")
	fs.DurationVar(&cfg.Run.SeedWait, "seed-wait", DefaultSeedWait, "how long to wait for seeded items to show in GET /v1/history")
	fs.DurationVar(&cfg.Interval, "interval", DefaultSoakInterval, "one sample's span")
	fs.DurationVar(&cfg.Warmup, "warmup", DefaultSoakWarmup, "left out of the memory verdict")
	fs.Float64Var(&cfg.Flat, "flat", DefaultSoakFlat, "largest allowed spread of resident memory after the warm-up, (max-min)/min")
	fs.StringVar(&cfg.Ops, "ops", DefaultOps, "base URL of onair's ops listener (--ops-addr), whose /metrics is sampled")
	fs.StringVar(&cfg.RedisAddr, "redis-addr", "127.0.0.1:16379", "Redis whose used_memory is sampled (onair dev's child); empty: none")
	if err := parseArgs(fs, args); err != nil {
		return cfg, err
	}
	if cfg.Run.ReportDir == "" {
		cfg.Run.ReportDir = defaultReportDir("soak")
	}
	cfg.Progress = stderr
	return cfg, finishTargetConfig(&cfg.Run, secret, getenv, readFile)
}
