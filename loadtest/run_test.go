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
			Target: target, TokenSecret: secret, ReportDir: dir, Progress: &progress}
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
