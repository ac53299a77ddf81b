package loadtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Targets of the figures the open issues ask for (issues 2, 3 and 4).
const (
	targetProgressRatio   = 0.7
	targetSuccess         = 0.999
	targetBatchEvents     = 200_000
	targetHistoryRatio    = 0.6
	targetHistoryP99      = 50.0 // ms
	targetE2EEvents       = 150_000
	targetVisibilityP99Ms = 1000.0
)

// NotesMarker starts the hand-written part of BENCHMARKS.md, which
// `onair loadtest table --keep` carries over when it rewrites the file.
const NotesMarker = "<!-- notes: everything below is kept by make bench -->"

// benchRun is one report directory of a bench run.
type benchRun struct {
	dir     string
	command string // command.txt: how the run was made
	exit    string // exit.txt: the command's exit status, when recorded
	run     *Summary
	e2e     *E2ESummary
}

func readBenchRun(dir string) (benchRun, error) {
	r := benchRun{dir: dir}
	if b, err := os.ReadFile(filepath.Join(dir, "command.txt")); err == nil {
		r.command = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile(filepath.Join(dir, "exit.txt")); err == nil {
		r.exit = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile(filepath.Join(dir, "e2e.json")); err == nil {
		var s E2ESummary
		if err := json.Unmarshal(b, &s); err != nil {
			return r, fmt.Errorf("cannot decode %s/e2e.json: %w", dir, err)
		}
		r.e2e = &s
		return r, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return r, err
	}
	b, err := os.ReadFile(filepath.Join(dir, "summary.json"))
	if errors.Is(err, os.ErrNotExist) {
		return r, nil // the run failed before it wrote a summary: a row says so
	}
	if err != nil {
		return r, err
	}
	var s Summary
	if err := json.Unmarshal(b, &s); err != nil {
		return r, fmt.Errorf("cannot decode %s/summary.json: %w", dir, err)
	}
	r.run = &s
	return r, nil
}

// TableConfig is what `onair loadtest table` writes BENCHMARKS.md from.
type TableConfig struct {
	// Dirs are report directories, one per row, in order.
	Dirs []string
	// Commit names the source measured (e.g. `git describe --dirty`).
	Commit string
	// GoBench is a file of `go test -bench` output, quoted verbatim.
	GoBench string
	// Keep is an earlier BENCHMARKS.md whose text from NotesMarker on is
	// carried over.
	Keep string
	// Started is when the bench run started; zero: unknown.
	Started time.Time
	// Notes are extra lines for the header (e.g. what else ran on the
	// machine), one per element.
	Notes []string
}

func parseTable(args []string, stderr io.Writer) (TableConfig, error) {
	var cfg TableConfig
	fs := newFlagSet("table", stderr)
	fs.StringVar(&cfg.Commit, "commit", "", "the commit measured (e.g. output of git describe --always --dirty)")
	fs.StringVar(&cfg.GoBench, "go-bench", "", "file holding go test -bench output, quoted verbatim")
	fs.StringVar(&cfg.Keep, "keep", "", "earlier BENCHMARKS.md: its text from the notes marker on is kept")
	started := fs.Int64("started", 0, "Unix seconds at which the bench run started")
	var notes multiFlag
	fs.Var(&notes, "note", "a line for the header (repeatable)")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	cfg.Dirs = fs.Args()
	cfg.Notes = notes
	if *started > 0 {
		cfg.Started = time.Unix(*started, 0)
	}
	if len(cfg.Dirs) == 0 {
		return cfg, errors.New("give at least one report directory")
	}
	return cfg, nil
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, "; ") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// Table writes BENCHMARKS.md for the report directories of cfg to w.
func Table(w io.Writer, cfg TableConfig) error {
	runs := make([]benchRun, 0, len(cfg.Dirs))
	for _, d := range cfg.Dirs {
		r, err := readBenchRun(d)
		if err != nil {
			return err
		}
		runs = append(runs, r)
	}
	var b bytes.Buffer
	b.WriteString("# onair benchmarks\n\n")
	b.WriteString("Written by `make bench` (`scripts/bench.sh`, then `onair loadtest table`); the table is\n" +
		"regenerated on every run. Every ratio is against the gin hello-world baseline measured\n" +
		"just before it, in the same run, with the same load generator on the same cores\n" +
		"(the baseline server runs as a process of its own, like onair).\n\n")
	writeMachine(&b, cfg)

	var missed []string
	b.WriteString("\n## HTTP scenarios and end-to-end\n\n")
	b.WriteString("| figure | value | baseline (same run) | ratio | target | met | command |\n")
	b.WriteString("| --- | --- | --- | --- | --- | --- | --- |\n")
	for _, r := range runs {
		row, miss := tableRow(r)
		b.WriteString(row)
		missed = append(missed, miss...)
	}
	b.WriteString("\n")
	if len(missed) == 0 {
		b.WriteString("**Every stated target was met in this run.**\n")
	} else {
		b.WriteString("**Targets missed in this run:**\n\n")
		for _, m := range missed {
			b.WriteString("- " + m + "\n")
		}
	}
	writeSeeds(&b, runs)
	for _, r := range runs {
		if r.e2e != nil {
			writeE2E(&b, r)
		}
	}
	if cfg.GoBench != "" {
		out, err := os.ReadFile(cfg.GoBench)
		if err != nil {
			return err
		}
		b.WriteString("\n## Go benchmarks (hot paths)\n\n`go test -run '^$' -bench . -benchtime 1s ./ingest ./api ./history ./aggregate`, verbatim:\n\n```\n")
		b.Write(bytes.TrimRight(out, "\n"))
		b.WriteString("\n```\n")
	}
	notes := "\n" + NotesMarker + "\n"
	if cfg.Keep != "" {
		old, err := os.ReadFile(cfg.Keep)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		if i := bytes.Index(old, []byte(NotesMarker)); i >= 0 {
			notes = "\n" + string(old[i:])
		}
	}
	b.WriteString(notes)
	_, err := w.Write(b.Bytes())
	return err
}

func writeMachine(b *bytes.Buffer, cfg TableConfig) {
	cpu := "unknown"
	if info, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for l := range strings.SplitSeq(string(info), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	mem := "unknown"
	if info, err := os.ReadFile("/proc/meminfo"); err == nil {
		for l := range strings.SplitSeq(string(info), "\n") {
			if v, ok := strings.CutPrefix(l, "MemTotal:"); ok {
				if kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64); err == nil {
					mem = fmt.Sprintf("%.1f GiB", kb/(1<<20))
				}
				break
			}
		}
	}
	kernel := "unknown"
	if v, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel = strings.TrimSpace(string(v))
	}
	load := ""
	if v, err := os.ReadFile("/proc/loadavg"); err == nil {
		load = strings.Join(strings.Fields(string(v))[:3], " ")
	}
	date := time.Now()
	if !cfg.Started.IsZero() {
		date = cfg.Started
	}
	commit := cfg.Commit
	if commit == "" {
		commit = "unknown"
	}
	fmt.Fprintf(b, "| machine | |\n| --- | --- |\n")
	fmt.Fprintf(b, "| cores (`nproc`) | %d |\n", runtime.NumCPU())
	fmt.Fprintf(b, "| CPU | %s |\n", cpu)
	fmt.Fprintf(b, "| memory | %s |\n", mem)
	fmt.Fprintf(b, "| kernel | %s |\n", kernel)
	fmt.Fprintf(b, "| Go | %s |\n", runtime.Version())
	fmt.Fprintf(b, "| date | %s |\n", date.Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(b, "| commit | `%s` |\n", commit)
	if load != "" {
		fmt.Fprintf(b, "| load average when the table was written | %s |\n", load)
	}
	for _, n := range cfg.Notes {
		fmt.Fprintf(b, "\n%s\n", n)
	}
}

// tableRow is one run's row, and the targets it missed.
func tableRow(r benchRun) (string, []string) {
	cmd := "`" + strings.ReplaceAll(r.command, "|", `\|`) + "`"
	if r.command == "" {
		cmd = "—"
	}
	name := filepath.Base(r.dir)
	if r.e2e != nil {
		return e2eRow(r.e2e, cmd)
	}
	s := r.run
	if s == nil {
		exit := r.exit
		if exit == "" {
			exit = "unknown"
		}
		return fmt.Sprintf("| %s | **no result** (exit %s; see the bench log) | | | | **NO** | %s |\n", name, exit, cmd),
			[]string{fmt.Sprintf("%s: the run produced no summary (exit %s)", name, exit)}
	}
	base, ratioCell := "—", "—"
	var rt float64
	if s.Baseline != nil && s.VsBaseline != nil {
		base = fmt.Sprintf("%s req/s, p99 %.1f ms", num(s.Baseline.Throughput), s.Baseline.Latencies.P99)
		rt = s.VsBaseline.Throughput
		ratioCell = fmt.Sprintf("%.2f×", rt)
		if n := len(s.Rounds); n > 1 {
			lo, hi := s.Rounds[0].Ratio, s.Rounds[0].Ratio
			for _, r := range s.Rounds {
				lo, hi = min(lo, r.Ratio), max(hi, r.Ratio)
			}
			ratioCell += fmt.Sprintf(" (median of %d alternating rounds, %.2f–%.2f)", n, lo, hi)
		}
		ratioCell += ceilingCell(s)
	}
	value := fmt.Sprintf("**%s req/s**, success %s, p50 %.1f ms, p99 %.1f ms", num(s.Throughput), pct(s.Success), s.Latencies.P50, s.Latencies.P99)
	if s.AcceptedEvents > 0 && s.Scenario != "progress" {
		value = fmt.Sprintf("**%s events/s** (%s req/s), success %s, p50 %.1f ms, p99 %.1f ms",
			num(s.EventsPerSec), num(s.Throughput), pct(s.Success), s.Latencies.P50, s.Latencies.P99)
	}
	if s.Lost {
		value += " — LOST requests: not a capacity figure"
	}
	var (
		target string
		checks []check
	)
	succ := check{s.Success >= targetSuccess, fmt.Sprintf("success %s < 99.9 %%", pct(s.Success))}
	switch s.Scenario {
	case "baseline":
		return fmt.Sprintf("| gin hello-world baseline (own process) | **%s req/s**, success %s, p50 %.1f ms, p99 %.1f ms | (is the baseline) | 1 | reference | — | %s |\n",
			num(s.Throughput), pct(s.Success), s.Latencies.P50, s.Latencies.P99, cmd), nil
	case "progress":
		target = "≥ 0.7× baseline, success ≥ 99.9 %"
		checks = []check{{s.VsBaseline != nil && rt >= targetProgressRatio, fmt.Sprintf("throughput %.2f× baseline < 0.7×", rt)}, succ}
	case "batch":
		target = "≥ 200 000 events/s"
		checks = []check{{s.EventsPerSec >= targetBatchEvents, fmt.Sprintf("%s events/s < 200 000", num(s.EventsPerSec))}, succ}
	case "history":
		target = "≥ 0.6× baseline, p99 ≤ 50 ms, success ≥ 99.9 %"
		checks = []check{
			{s.VsBaseline != nil && rt >= targetHistoryRatio, fmt.Sprintf("throughput %.2f× baseline < 0.6×", rt)},
			{s.Latencies.P99 <= targetHistoryP99, fmt.Sprintf("p99 %.1f ms > 50 ms", s.Latencies.P99)},
			succ,
		}
	default:
		target = "none stated (reported)"
		checks = []check{succ}
	}
	figure := map[string]string{
		"progress": "`POST /v1/progress`",
		"batch":    "`POST /v1/events`, " + perRequest(s) + " events/request",
		"history":  "`GET /v1/history?limit=20` (seeded users)",
		"continue": "`GET /v1/continue?limit=20` (seeded users)",
		"mixed":    "mixed: 60 % progress, 10 % batch, 25 % history, 5 % continue",
	}[s.Scenario]
	if figure == "" {
		figure = s.Scenario
	}
	met, missed := verdict(name, checks)
	return fmt.Sprintf("| %s | %s | %s | %s | %s | %s | %s |\n", figure, value, base, ratioCell, target, met, cmd), missed
}

// ceilingCell says, for a run with RunConfig.Ceiling, how far the
// hello-world got with the scenario's own requests and what share of that
// the scenario reached: medians over the rounds when there were several.
func ceilingCell(s *Summary) string {
	if s.Ceiling == nil || s.VsCeiling == nil || s.Baseline == nil || s.Baseline.Throughput == 0 {
		return ""
	}
	shape, share := s.Ceiling.Throughput/s.Baseline.Throughput, s.VsCeiling.Throughput
	if len(s.Rounds) > 1 {
		shapes, shares := make([]float64, len(s.Rounds)), make([]float64, len(s.Rounds))
		for i, r := range s.Rounds {
			shapes[i], shares[i] = r.CeilingThroughput/r.BaselineThroughput, r.CeilingRatio
		}
		shape, share = quantile(shapes, 0.5), quantile(shares, 0.5)
	}
	return fmt.Sprintf("; the hello-world answering these same requests: %.2f×, of which this is %.2f×", shape, share)
}

type check struct {
	ok  bool
	why string // what failed, when !ok
}

func verdict(name string, cs []check) (string, []string) {
	var missed []string
	for _, c := range cs {
		if !c.ok {
			missed = append(missed, name+": "+c.why)
		}
	}
	if len(missed) == 0 {
		return "yes", nil
	}
	return "**NO**", missed
}

// e2eRow is one end-to-end run. Its targets depend on its shape:
//   - max rate, session batches: the end-to-end rate is the figure; the
//     load generator floods the pipeline, so visibility measures the
//     backlog and is reported, not judged;
//   - paced (Rate > 0): visibility under the target load is the figure: the
//     offered rate must reach it, and the pipeline keep up; the end-to-end
//     rate is reported (it carries the last flush's fixed tail);
//   - max rate, every event its own item (SessionItems 0): the worst case for
//     the Redis write-back, reported without a target.
func e2eRow(s *E2ESummary, cmd string) (string, []string) {
	v := s.Visibility
	paced, worst := s.Run.Rate > 0, s.Run.Rate == 0 && s.SessionItems == 0
	value := fmt.Sprintf("**%s events/s** first request → last row in ClickHouse (drain %.1f s); %d missing, %d duplicated; visibility p50 %.0f ms, p99 %.0f ms",
		num(s.EventsPerSec), s.DrainSeconds, s.MissingCount, s.DuplicatedCount, v.P50, v.P99)
	if paced {
		value = fmt.Sprintf("offered **%s events/s**: ", num(s.Run.EventsPerSec)) + value
	}
	if !s.Complete {
		value = fmt.Sprintf("**incomplete**: ClickHouse held %s of %s accepted events when the wait ran out, %.0f s after the attack: **%s events/s** delivered over attack + wait; %d duplicated; visibility p99 %.0f ms",
			num(float64(s.Check.Found)), num(float64(s.AcceptedEvents)), s.DrainSeconds, num(deliveredRate(s)), s.DuplicatedCount, v.P99)
	}
	checks := []check{
		{s.Complete, fmt.Sprintf("ClickHouse did not hold every accepted event within the wait: %s of %s after %.0f s, %s events/s delivered (the aggregator fell behind; whether the rest arrived later was not checked)",
			num(float64(s.Check.Found)), num(float64(s.AcceptedEvents)), s.DrainSeconds, num(deliveredRate(s)))},
		{!s.Complete || s.MissingCount == 0, fmt.Sprintf("%d events missing", s.MissingCount)},
		{s.DuplicatedCount == 0, fmt.Sprintf("%d events duplicated", s.DuplicatedCount)},
		{s.Run.Success >= targetSuccess, fmt.Sprintf("HTTP success %s < 99.9 %%", pct(s.Run.Success))},
	}
	label, target := "end to end at max rate, session batches (HTTP → Kafka → aggregator → Redis + ClickHouse)", "≥ 150 000 events/s, 0 missing, 0 duplicated"
	switch {
	case worst:
		label, target = "end to end at max rate, worst case: every event its own item (nothing collapses)", "none stated (reported), 0 missing, 0 duplicated"
	case paced:
		label, target = "visibility under the target load, paced (HTTP → Kafka → aggregator → Redis + ClickHouse)", "offered ≥ 150 000 events/s, visibility p99 < 1 s, 0 missing, 0 duplicated"
		checks = append(checks,
			check{s.Run.EventsPerSec >= targetE2EEvents, fmt.Sprintf("offered %s events/s < 150 000: not the target load", num(s.Run.EventsPerSec))},
			check{v.Samples > 0 && v.TimedOut == 0 && v.P99 < targetVisibilityP99Ms, fmt.Sprintf("visibility p99 %.0f ms (%d samples, %d timed out), goal < 1 s", v.P99, v.Samples, v.TimedOut)})
	default:
		checks = append(checks, check{!s.Complete || s.EventsPerSec >= targetE2EEvents, fmt.Sprintf("%s events/s end to end < 150 000", num(s.EventsPerSec))})
	}
	met, missed := verdict("e2e", checks)
	return fmt.Sprintf("| %s | %s | — | — | %s | %s | %s |\n", label, value, target, met, cmd), missed
}

func writeSeeds(b *bytes.Buffer, runs []benchRun) {
	first := true
	for _, r := range runs {
		if r.run == nil || r.run.Seed == nil {
			continue
		}
		if first {
			b.WriteString("\n## Seeding (before the read scenarios; not part of any figure)\n\n")
			b.WriteString("| scenario | users × items | events | requests (retries) | posting | until visible |\n| --- | --- | --- | --- | --- | --- |\n")
			first = false
		}
		sd := r.run.Seed
		fmt.Fprintf(b, "| %s | %d × %d | %s | %d (%d) | %.1f s | %.1f s more |\n",
			r.run.Scenario, sd.Users, sd.ItemsPerUser, num(float64(sd.Events)), sd.Requests, sd.Retries, sd.PostSeconds, sd.VisibleSeconds)
	}
}

// e2eTitle tells the e2e runs of one bench apart by their flags: paced or
// at max rate, session-shaped or independent events.
func e2eTitle(command string) string {
	pace := "paced"
	if strings.Contains(command, "--rate 0 ") || strings.HasSuffix(command, "--rate 0") {
		pace = "at max rate"
	}
	shape := "independent events"
	if strings.Contains(command, "--session-items") {
		shape = "session batches"
	}
	return pace + ", " + shape
}

func writeE2E(b *bytes.Buffer, r benchRun) {
	s := r.e2e
	v := s.Visibility
	fmt.Fprintf(b, "\n## End to end, %s\n\n", e2eTitle(r.command))
	if r.command != "" {
		fmt.Fprintf(b, "`%s`\n\n", r.command)
	}
	fmt.Fprintf(b, "| | |\n| --- | --- |\n")
	fmt.Fprintf(b, "| events accepted (202) | %s in %s requests (success %s) |\n", num(float64(s.AcceptedEvents)), num(float64(s.Run.Requests)), pct(s.Run.Success))
	fmt.Fprintf(b, "| HTTP accept rate during the attack | %s events/s (%s req/s), request p99 %.1f ms |\n", num(s.Run.EventsPerSec), num(s.Run.Throughput), s.Run.Latencies.P99)
	fmt.Fprintf(b, "| **end to end** (first request → last event in ClickHouse) | **%s events/s** |\n", num(s.EventsPerSec))
	if s.Complete {
		fmt.Fprintf(b, "| drain (end of attack → ClickHouse complete) | %.1f s |\n", s.DrainSeconds)
	} else {
		fmt.Fprintf(b, "| drain (end of attack → ClickHouse complete) | **not complete** after %.1f s: %s of %s events in ClickHouse, %s events/s delivered over attack + wait |\n",
			s.DrainSeconds, num(float64(s.Check.Found)), num(float64(s.AcceptedEvents)), num(deliveredRate(s)))
	}
	missing := "missing"
	if !s.Complete {
		missing = "not in ClickHouse when the wait ran out"
	}
	fmt.Fprintf(b, "| %s / duplicated | %d / %d (unexpected, i.e. client timeouts that landed: %d) |\n", missing, s.MissingCount, s.DuplicatedCount, len(s.Check.Unexpected))
	fmt.Fprintf(b, "| visibility 202 → `GET /v1/history` | p50 %.0f ms, p90 %.0f ms, **p99 %.0f ms**, max %.0f ms (%d samples, %d timed out, %d skipped) |\n",
		v.P50, v.P90, v.P99, v.Max, v.Samples, v.TimedOut, v.Skipped)
}

// num formats x with thin grouping: 123 456.
func num(x float64) string {
	s := strconv.FormatFloat(x, 'f', 0, 64)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var out []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ' ')
		}
		out = append(out, s[i])
	}
	if neg {
		return "-" + string(out)
	}
	return string(out)
}

func pct(x float64) string { return strconv.FormatFloat(100*x, 'f', 2, 64) + " %" }

var _ flag.Value = (*multiFlag)(nil)

// deliveredRate is how fast events reached ClickHouse over the attack and
// the wait after it: a lower bound of the pipeline's rate when the run did
// not complete.
func deliveredRate(s *E2ESummary) float64 {
	d := s.Run.Duration.Seconds() + s.DrainSeconds
	if d <= 0 {
		return 0
	}
	return float64(s.Check.Found) / d
}

// perRequest is the batch size of a batch run: events per accepted request.
func perRequest(s *Summary) string {
	if n := s.StatusCodes["202"]; n > 0 {
		return strconv.FormatUint(s.AcceptedEvents/uint64(n), 10)
	}
	return "?"
}
