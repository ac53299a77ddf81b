package loadtest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

// faultsMain is `onair loadtest faults`.
func faultsMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var cfg FaultsConfig
	var secret, faults, out string
	fs := newFlagSet("faults", stderr)
	fs.StringVar(&cfg.Load.URL, "target", DefaultTarget, "base URL of the onair dev stack's HTTP API")
	fs.StringVar(&secret, "token-secret", "", "HS256 token secret (default $ONAIR_AUTH_SECRET, else "+SecretFile+")")
	fs.IntVar(&cfg.OnairPID, "pid", 0, "pid of the onair dev process whose redis-server and clickhouse-server are frozen and killed (required)")
	fs.StringVar(&faults, "faults", strings.Join(FaultNames(), ","), "faults to inject, in this order")
	fs.DurationVar(&cfg.Hold, "hold", 5*time.Second, "how long a freeze lasts")
	fs.DurationVar(&cfg.Steady, "steady", 5*time.Second, "warm-up, and the calm measured before and after the faults")
	fs.IntVar(&cfg.Load.IngestRate, "rate", 60, "reports per second (a quarter of them batches of 3 events)")
	fs.IntVar(&cfg.Load.ReadRate, "read-rate", 30, "GET /v1/history per second (half of them a user's second page)")
	fs.IntVar(&cfg.Load.Users, "users", 20, "users reporting and reading")
	fs.IntVar(&cfg.Load.PageLimit, "page-limit", 20, "limit of every history read: below onair's --history-max-entries, so first pages come from Redis and second pages from ClickHouse")
	fs.StringVar(&cfg.ClickHouse, "clickhouse", DefaultClickHouse, "ClickHouse native address, to count the accepted events")
	fs.StringVar(&cfg.Database, "database", DefaultDatabase, "ClickHouse database holding events")
	fs.StringVar(&out, "json", "", "also write the summary as JSON to this file")
	if err := parseArgs(fs, args); err != nil {
		return usageErr(stderr, "faults", err)
	}
	if cfg.OnairPID <= 0 {
		return usageErr(stderr, "faults", fmt.Errorf("--pid is required"))
	}
	if err := checkTarget(cfg.Load.URL, false); err != nil {
		return usageErr(stderr, "faults", err)
	}
	cfg.Faults = strings.Split(faults, ",")
	b, err := resolveSecret(secret, os.Getenv, os.ReadFile)
	if err != nil {
		return usageErr(stderr, "faults", err)
	}
	cfg.Load.Secret = b
	cfg.Log = stderr
	s, err := Faults(ctx, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "onair loadtest faults: %v\n", err)
		return ExitLost
	}
	TextFaults(stdout, s)
	if out != "" {
		b, _ := json.MarshalIndent(s, "", "  ")
		if err := os.WriteFile(out, append(b, '\n'), 0o644); err != nil {
			fmt.Fprintf(stderr, "onair loadtest faults: %v\n", err)
			return ExitLost
		}
	}
	if s.Lost {
		return ExitLost
	}
	return ExitOK
}

// TextFaults writes the summary as the Markdown table of BENCHMARKS.md.
func TextFaults(w io.Writer, s FaultsSummary) {
	fmt.Fprintln(w, "| phase | ingest p99 ms | ingest 202 | history p99 ms (first / deep page) | history statuses | down ms | ready after return ms |")
	fmt.Fprintln(w, "| --- | --- | --- | --- | --- | --- | --- |")
	row := func(name string, p PhaseStats, down, ready string) {
		fmt.Fprintf(w, "| %s | %.0f | %.1f %% of %d | %.0f / %.0f | %s | %s | %s |\n", name, p.Ingest.P99,
			100*p.Ingest.Share(202), p.Ingest.Requests, p.First.P99, p.Deep.P99, statuses(p), down, ready)
	}
	row("steady", s.Steady, "", "")
	for _, f := range s.Faults {
		row(f.Fault, f.During, fmt.Sprintf("%.0f", f.DownMs), fmt.Sprintf("%.0f", f.ReadyMs))
	}
	row("after", s.After, "", "")
	fmt.Fprintf(w, "\nevents accepted %d, in ClickHouse %d, missing %d, doubled %d (lost: %v)\n",
		s.Check.Accepted, s.Check.Found, len(s.Check.Missing), len(s.Check.Duplicated), s.Lost)
}

// statuses lists a phase's history replies by status, e.g. "200: 40, 503: 12".
func statuses(p PhaseStats) string {
	sum := map[int]int{}
	noRetry := 0
	for _, l := range []FaultLatencies{p.First, p.Deep} {
		for c, n := range l.Codes {
			sum[c] += n
		}
		noRetry += l.NoRetryAfter
	}
	codes := make([]int, 0, len(sum))
	for c := range sum {
		codes = append(codes, c)
	}
	sort.Ints(codes)
	var parts []string
	for _, c := range codes {
		parts = append(parts, strconv.Itoa(c)+": "+strconv.Itoa(sum[c]))
	}
	if noRetry > 0 {
		parts = append(parts, fmt.Sprintf("(%d 503 without Retry-After)", noRetry))
	}
	return strings.Join(parts, ", ")
}
