package loadtest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// readReport parses the four files of a run and checks they agree.
func readReport(t *testing.T, dir string) (Summary, map[string]int) {
	t.Helper()
	var s Summary
	b, err := os.ReadFile(filepath.Join(dir, "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("summary.json: %v", err)
	}

	// report.txt is vegeta's text report: check the request count and the
	// status codes line against the summary.
	txt, err := os.ReadFile(filepath.Join(dir, "report.txt"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^Requests\s+\[total, rate, throughput\]\s+(\d+),`).FindSubmatch(txt)
	if m == nil {
		t.Fatalf("report.txt has no Requests line:\n%s", txt)
	}
	if n, _ := strconv.ParseUint(string(m[1]), 10, 64); n != s.Requests {
		t.Fatalf("report.txt says %d requests, summary.json %d", n, s.Requests)
	}
	codes := map[string]int{}
	sc := regexp.MustCompile(`(?m)^Status Codes\s+\[code:count\]\s+(.*)$`).FindSubmatch(txt)
	if sc == nil {
		t.Fatalf("report.txt has no Status Codes line:\n%s", txt)
	}
	for _, f := range strings.Fields(string(sc[1])) {
		code, n, _ := strings.Cut(f, ":")
		codes[code], _ = strconv.Atoi(n)
	}
	if !strings.Contains(string(txt), "Latencies") || !strings.Contains(string(txt), "Success") {
		t.Fatalf("report.txt lacks latencies or success:\n%s", txt)
	}

	// results.bin must decode with vegeta's own decoder, one result per request.
	f, err := os.Open(filepath.Join(dir, "results.bin"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := vegeta.NewDecoder(bufio.NewReader(f))
	var n uint64
	for {
		var r vegeta.Result
		if err := dec.Decode(&r); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			t.Fatalf("results.bin result %d: %v", n, err)
		}
		n++
	}
	if n != s.Requests {
		t.Fatalf("results.bin holds %d results, summary.json %d requests", n, s.Requests)
	}

	html, err := os.ReadFile(filepath.Join(dir, "plot.html"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(html, []byte("<html")) || !bytes.Contains(html, []byte("Dygraph")) {
		t.Fatalf("plot.html does not look like vegeta's plot (%d bytes)", len(html))
	}
	return s, codes
}

func TestScenarios(t *testing.T) {
	f := func(scenario string, wantCodes ...string) {
		t.Helper()
		target, secret := startTarget(t)
		dir := t.TempDir()
		var progress bytes.Buffer
		cfg := RunConfig{Scenario: scenario, Rate: 100, Duration: time.Second, Users: 500, Items: 2000, Batch: 20,
			Target: target, TokenSecret: secret, ReportDir: dir, Progress: &progress, Seed: seedByDefault[scenario]}
		got, err := Run(context.Background(), cfg)
		if err != nil {
			t.Fatalf("%s: %v", scenario, err)
		}
		s, codes := readReport(t, dir)
		if s.Requests != got.Requests || s.Scenario != scenario {
			t.Fatalf("%s: summary.json %+v differs from returned %+v", scenario, s, got)
		}
		if s.Requests < 80 || s.Requests > 110 {
			t.Fatalf("%s: %d requests at 100/s for 1s", scenario, s.Requests)
		}
		if s.Lost || s.Failed != 0 || s.Success != 1 {
			t.Fatalf("%s: lost=%v failed=%d success=%v errors=%v", scenario, s.Lost, s.Failed, s.Success, s.Errors)
		}
		total := 0
		for _, c := range wantCodes {
			if codes[c] == 0 {
				t.Fatalf("%s: no %s in report.txt codes %v", scenario, c, codes)
			}
			total += codes[c]
		}
		if uint64(total) != s.Requests {
			t.Fatalf("%s: codes %v, want only %v", scenario, codes, wantCodes)
		}
		if s.Latencies.P99 <= 0 || s.Latencies.Max < s.Latencies.P99 {
			t.Fatalf("%s: bad latencies %+v", scenario, s.Latencies)
		}
		if !strings.Contains(progress.String(), "[progress] ") {
			t.Fatalf("%s: no progress line: %q", scenario, progress.String())
		}
		if (s.Seed != nil) != cfg.Seed || (cfg.Seed && (s.Seed.Users != 500 || s.Seed.Events != 500*DefaultSeedItems)) {
			t.Fatalf("%s: seed %+v, seeding %v", scenario, s.Seed, cfg.Seed)
		}
		switch scenario {
		case "progress":
			if s.AcceptedEvents != s.Requests {
				t.Fatalf("progress: %d events for %d requests", s.AcceptedEvents, s.Requests)
			}
		case "batch":
			if s.AcceptedEvents != 20*s.Requests {
				t.Fatalf("batch: %d events for %d requests of 20", s.AcceptedEvents, s.Requests)
			}
		}
	}
	f("progress", "202")
	f("batch", "202")
	f("history", "200")
	f("continue", "200")
	f("mixed", "200", "202")
}

func TestRunLostExitsNonZero(t *testing.T) {
	fk := newFakeAPI(t)
	fk.failEvery = 5
	dir := t.TempDir()
	var out, errb bytes.Buffer
	code := Main(context.Background(), []string{"run", "--scenario", "progress", "--rate", "50", "--duration", "500ms",
		"--target", fk.url, "--token-secret", string(fk.secret), "--report", dir}, &out, &errb)
	if code != ExitLost {
		t.Fatalf("exit %d, want %d; stdout:\n%s\nstderr:\n%s", code, ExitLost, out.String(), errb.String())
	}
	s, codes := readReport(t, dir)
	if !s.Lost || s.Failed == 0 || codes["500"] != int(s.Failed) {
		t.Fatalf("summary lost=%v failed=%d codes=%v", s.Lost, s.Failed, codes)
	}
	if !strings.Contains(out.String(), "LOST:") {
		t.Fatalf("stdout does not say LOST:\n%s", out.String())
	}
}

func TestRunStopsOnCancel(t *testing.T) {
	fk := newFakeAPI(t)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	s, err := Run(ctx, RunConfig{Scenario: "history", Rate: 50, Duration: time.Minute, Target: fk.url, TokenSecret: fk.secret})
	if err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el > 5*time.Second || !s.Interrupted {
		t.Fatalf("cancelled run took %s, interrupted=%v", el, s.Interrupted)
	}
}

func TestBaseline(t *testing.T) {
	dir := t.TempDir()
	s, err := Baseline(context.Background(), RunConfig{Rate: 100, Duration: time.Second, ReportDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	got, codes := readReport(t, dir)
	if s.Lost || got.Scenario != "baseline" || codes["200"] != int(got.Requests) || got.Requests < 80 {
		t.Fatalf("baseline: lost=%v %+v codes=%v", s.Lost, got, codes)
	}
}

func TestRunWithBaseline(t *testing.T) {
	target, secret := startTarget(t)
	dir := t.TempDir()
	s, err := Run(context.Background(), RunConfig{Scenario: "history", Rate: 50, Duration: 500 * time.Millisecond,
		Target: target, TokenSecret: secret, ReportDir: dir, Baseline: true})
	if err != nil {
		t.Fatal(err)
	}
	if s.Baseline == nil || s.VsBaseline == nil || s.VsBaseline.Throughput <= 0 {
		t.Fatalf("no baseline ratio: %+v", s)
	}
	if _, err := os.Stat(filepath.Join(dir, "baseline", "report.txt")); err != nil {
		t.Fatal(err)
	}
	got, _ := readReport(t, dir)
	if got.Baseline == nil {
		t.Fatal("summary.json lacks the baseline")
	}
}

// TestRunRounds: --rounds alternates baseline and scenario (and, with
// --ceiling, the scenario's requests to the hello-world), keeps each
// round's reports apart, and reports the median round with all of them.
func TestRunRounds(t *testing.T) {
	target, secret := startTarget(t)
	dir := t.TempDir()
	s, err := Run(context.Background(), RunConfig{Scenario: "mixed", Rate: 50, Duration: 300 * time.Millisecond,
		Target: target, TokenSecret: secret, ReportDir: dir, Baseline: true, Rounds: 3, Ceiling: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Rounds) != 3 || s.Lost {
		t.Fatalf("rounds %+v, lost %v", s.Rounds, s.Lost)
	}
	// The hello-world answers every one of the scenario's requests: reads,
	// progress and batches.
	if c := s.Ceiling; c == nil || c.Success != 1 || c.Requests != 15 || c.StatusCodes["200"] != 15 || s.VsCeiling == nil || s.VsCeiling.Throughput <= 0 {
		t.Fatalf("ceiling %+v, vs %+v", c, s.VsCeiling)
	}
	for _, r := range s.Rounds {
		if r.CeilingThroughput <= 0 || r.CeilingRatio != r.Throughput/r.CeilingThroughput {
			t.Fatalf("round %+v", r)
		}
	}
	for i := 1; i <= 3; i++ {
		for _, f := range []string{"report.txt", "baseline/report.txt", "ceiling/report.txt"} {
			if _, err := os.Stat(filepath.Join(dir, "round-"+strconv.Itoa(i), f)); err != nil {
				t.Fatal(err)
			}
		}
	}
	var got Summary
	if b, err := os.ReadFile(filepath.Join(dir, "summary.json")); err != nil || json.Unmarshal(b, &got) != nil {
		t.Fatalf("summary.json: %v", err)
	}
	if len(got.Rounds) != 3 || got.VsBaseline == nil || got.Ceiling == nil {
		t.Fatalf("summary.json: %+v", got)
	}
}

func TestMedianRound(t *testing.T) {
	run := func(tput, base float64, lost bool) Summary {
		return Summary{Throughput: tput, Lost: lost, Baseline: &Summary{Throughput: base}, VsBaseline: &Ratio{Throughput: tput / base}}
	}
	s := medianRound([]Summary{run(70, 100, false), run(90, 100, true), run(60, 100, false), run(80, 100, false)})
	// ratios 0.7, 0.9, 0.6, 0.8: the lower median is 0.7
	if s.Throughput != 70 || !s.Lost || len(s.Rounds) != 4 || s.Rounds[1].Ratio != 0.9 {
		t.Fatalf("got %+v", s)
	}
	if one := medianRound([]Summary{run(50, 100, false)}); one.Rounds != nil || one.Throughput != 50 {
		t.Fatalf("one round: %+v", one)
	}
}

// TestSeed checks that every user gets its seeded items, unfinished and
// distinct, through a service token, and that the wait sees them.
func TestSeed(t *testing.T) {
	fk := newFakeAPI(t)
	const users, items, per = 300, 50, 24 // items < users*per: the item ids wrap
	sd, err := Seed(context.Background(), RunConfig{Scenario: "history", Duration: time.Second, Users: users, Items: items,
		SeedItems: per, Target: fk.url, TokenSecret: fk.secret})
	if err != nil {
		t.Fatal(err)
	}
	if sd.Events != users*per || sd.Requests != (users*per+999)/1000 || sd.Sampled < 8 || sd.Sampled > 16 || sd.PostSeconds <= 0 {
		t.Fatalf("summary %+v", sd)
	}
	fk.mu.Lock()
	defer fk.mu.Unlock()
	for uid := uint64(1); uid <= users; uid++ {
		h := fk.history[uid]
		if len(h) != per {
			t.Fatalf("user %d has %d items, want %d", uid, len(h), per)
		}
		for k, it := range h {
			if it.Finished || it.PositionMS <= 0 {
				t.Fatalf("user %d item %s: %+v, want unfinished with a position", uid, k, it)
			}
		}
	}
	if len(fk.history) != users {
		t.Fatalf("%d users have history, want %d (nothing under the service's own id)", len(fk.history), users)
	}
}

// TestSeedRetriesColdReads: a 503 on a user's first read (its history
// still loading from ClickHouse) is retried, not the end of seeding.
func TestSeedRetriesColdReads(t *testing.T) {
	fk := newFakeAPI(t)
	fk.coldReads = true
	if _, err := Seed(context.Background(), RunConfig{Scenario: "history", Duration: time.Second, Users: 200, Items: 50,
		SeedItems: 24, Target: fk.url, TokenSecret: fk.secret}); err != nil {
		t.Fatal(err)
	}
}

// TestSeedNotVisible: a server that accepts but never shows the events
// (no aggregator) makes seeding fail within its wait, saying why.
func TestSeedNotVisible(t *testing.T) {
	fk := newFakeAPI(t)
	fk.dropHistory = true
	start := time.Now()
	_, err := Seed(context.Background(), RunConfig{Scenario: "history", Duration: time.Second, Users: 10, Items: 100,
		SeedWait: 300 * time.Millisecond, Target: fk.url, TokenSecret: fk.secret})
	if err == nil || !strings.Contains(err.Error(), "not visible") {
		t.Fatalf("err %v", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatalf("took %s", time.Since(start))
	}
}

// TestTable writes BENCHMARKS.md from fabricated report directories and
// checks the rows, the verdicts and the kept notes.
func TestTable(t *testing.T) {
	root := t.TempDir()
	mk := func(name, command string, v any, file string) string {
		t.Helper()
		dir := filepath.Join(root, name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "command.txt"), []byte(command+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if v != nil {
			if err := writeJSON(filepath.Join(dir, file), v); err != nil {
				t.Fatal(err)
			}
		} else if err := os.WriteFile(filepath.Join(dir, "exit.txt"), []byte("1\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	base := &Summary{Scenario: "baseline", Throughput: 20000, Success: 1, Latencies: Latencies{P50: 1, P99: 5}}
	run := func(sc string, tput, evs, p99 float64) *Summary {
		return &Summary{Scenario: sc, Throughput: tput, EventsPerSec: evs, AcceptedEvents: uint64(evs), Success: 1, StatusCodes: map[string]int{"202": int(tput)},
			Latencies: Latencies{P50: 2, P99: p99}, Baseline: base, VsBaseline: &Ratio{Throughput: tput / base.Throughput}}
	}
	prog := run("progress", 15000, 15000, 9)
	prog.Rounds = []Round{{Ratio: 0.72, BaselineThroughput: 20000, CeilingThroughput: 16000, CeilingRatio: 0.9},
		{Ratio: 0.75, BaselineThroughput: 20000, CeilingThroughput: 15000, CeilingRatio: 1},
		{Ratio: 0.78, BaselineThroughput: 20000, CeilingThroughput: 17000, CeilingRatio: 0.92}}
	prog.Ceiling, prog.VsCeiling = &Summary{Throughput: 15000}, &Ratio{Throughput: 1}
	hist := run("history", 15000, 0, 12)
	hist.Seed = &SeedSummary{Users: 10000, ItemsPerUser: 24, Events: 240000, Requests: 240, PostSeconds: 3.2, VisibleSeconds: 0.4}
	e := &E2ESummary{Run: *run("e2e", 1500, 150000, 30), SessionItems: 3, AcceptedEvents: 3_000_000, Complete: true, DrainSeconds: 1.5,
		EventsPerSec: 120_000, Visibility: Visibility{Samples: 300, P50: 150, P90: 300, P99: 700, Max: 900}}
	dirs := []string{
		mk("1-baseline", "onair loadtest baseline --rate 0", base, "summary.json"),
		mk("2-progress", "onair loadtest run --scenario progress", prog, "summary.json"),
		mk("3-batch", "onair loadtest run --scenario batch", run("batch", 3000, 300_000, 40), "summary.json"),
		mk("4-history", "onair loadtest run --scenario history", hist, "summary.json"),
		mk("5-mixed", "onair loadtest run --scenario mixed", nil, ""),
		mk("6-e2e", "onair loadtest e2e --rate 0", e, "e2e.json"),
		mk("6b-e2e-paced", "onair loadtest e2e --rate 1600", &E2ESummary{Run: func() Summary { r := *run("e2e", 1600, 160000, 30); r.Rate = 1600; return r }(),
			SessionItems: 3, AcceptedEvents: 9_600_000, Complete: true, DrainSeconds: 4, EventsPerSec: 149_000,
			Visibility: Visibility{Samples: 900, P50: 90, P90: 300, P99: 800, Max: 950}}, "e2e.json"),
		mk("7-e2e", "onair loadtest e2e --rate 0 --duration 20s", &E2ESummary{Run: Summary{Duration: 20 * time.Second, Success: 1},
			AcceptedEvents: 1000, MissingCount: 200, DrainSeconds: 80, Check: CheckResult{Found: 800}}, "e2e.json"),
	}
	keep := filepath.Join(root, "old.md")
	if err := os.WriteFile(keep, []byte("# old\n| stale | row |\n"+NotesMarker+"\nhand-written analysis\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	gb := filepath.Join(root, "gobench.txt")
	if err := os.WriteFile(gb, []byte("BenchmarkX-2   100   123 ns/op\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	var errb bytes.Buffer
	args := append([]string{"table", "--commit", "abc123", "--go-bench", gb, "--keep", keep, "--note", "a note"}, dirs...)
	if code := Main(context.Background(), args, &out, &errb); code != ExitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	md := out.String()
	for _, want := range []string{
		"| commit | `abc123` |",
		"| gin hello-world baseline (own process) | **20 000 req/s**",
		"| `POST /v1/progress` | **15 000 req/s**, success 100.00 %, p50 2.0 ms, p99 9.0 ms | 20 000 req/s, p99 5.0 ms | 0.75× (median of 3 alternating rounds, 0.72–0.78); the hello-world answering these same requests: 0.80×, of which this is 0.92× | ≥ 0.7× baseline, success ≥ 99.9 % | yes |",
		"| `POST /v1/events`, 100 events/request | **300 000 events/s** (3 000 req/s)",
		"| history | 10000 × 24 | 240 000 | 240 (0) | 3.2 s | 0.4 s more |",
		"**no result** (exit 1",
		"- 5-mixed: the run produced no summary (exit 1)",
		"- e2e: 120 000 events/s end to end < 150 000",
		"| visibility under the target load, paced (HTTP → Kafka → aggregator → Redis + ClickHouse) | offered **160 000 events/s**: **149 000 events/s**",
		"**incomplete**: ClickHouse held 800 of 1 000 accepted events when the wait ran out, 80 s after the attack: **8 events/s** delivered",
		"| not in ClickHouse when the wait ran out / duplicated | 200 / 0",
		"**p99 700 ms**",
		"BenchmarkX-2   100   123 ns/op",
		"a note",
		NotesMarker + "\nhand-written analysis\n",
	} {
		if !strings.Contains(md, want) {
			t.Fatalf("BENCHMARKS.md lacks %q:\n%s", want, md)
		}
	}
	if strings.Contains(md, "stale") || strings.Count(md, "| **NO** |") != 3 {
		t.Fatalf("want exactly the mixed and both e2e rows missed, nothing stale:\n%s", md)
	}
}

func TestSeedSampleUsers(t *testing.T) {
	f := func(users, per int, want []uint64) {
		t.Helper()
		if got := seedSampleUsers(users, per); !slices.Equal(got, want) {
			t.Fatalf("seedSampleUsers(%d, %d) = %v, want %v", users, per, got, want)
		}
	}
	f(1, 24, []uint64{1})
	f(3, 24, []uint64{1, 2, 3})
	// 8 batches of 1000 events hold the last 333 users of 24 items.
	f(10000, 24, []uint64{1, 1429, 2857, 4286, 5714, 7143, 8571, 10000, 9668, 9715, 9762, 9810, 9857, 9905, 9952})
}
