package loadtest

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
	"github.com/tsenart/vegeta/v12/lib/plot"
)

// Summary is what one attack measured; it is written as summary.json.
type Summary struct {
	// Scenario is the scenario name ("baseline" for the hello-world run).
	Scenario string `json:"scenario"`
	// Target is the base URL attacked.
	Target string `json:"target"`
	// Rate is the requested rate per second; 0 means max rate.
	Rate float64 `json:"rate"`
	// AchievedRate is the rate at which requests were actually sent.
	AchievedRate float64 `json:"achieved_rate"`
	// Duration is the requested duration.
	Duration time.Duration `json:"duration_ns"`
	// Requests is the number of requests sent.
	Requests uint64 `json:"requests"`
	// Failed counts requests without a 2xx/3xx response (errors, timeouts,
	// 4xx, 5xx).
	Failed uint64 `json:"failed"`
	// Success is the ratio of successful requests, 0..1.
	Success float64 `json:"success"`
	// Throughput is successful requests per second.
	Throughput float64 `json:"throughput"`
	// AcceptedEvents counts events in 202-answered writes.
	AcceptedEvents uint64 `json:"accepted_events"`
	// EventsPerSec is AcceptedEvents per second of attack.
	EventsPerSec float64 `json:"events_per_sec"`
	// Latencies are request latencies in milliseconds.
	Latencies Latencies `json:"latencies_ms"`
	// StatusCodes counts responses per status code ("0" = no response).
	StatusCodes map[string]int `json:"status_codes"`
	// Errors is the set of distinct errors seen.
	Errors []string `json:"errors"`
	// Lost is true when any request failed: the run did not deliver all its
	// load and its figures must not be quoted as capacity.
	Lost bool `json:"lost"`
	// Interrupted is true when the run was stopped before its duration.
	Interrupted bool `json:"interrupted,omitempty"`
	// Baseline is the hello-world run made just before, when asked for.
	Baseline *Summary `json:"baseline,omitempty"`
	// VsBaseline is this run relative to Baseline.
	VsBaseline *Ratio `json:"vs_baseline,omitempty"`
	// Ceiling is the scenario's own requests sent to the hello-world
	// server right after this run, when asked for (RunConfig.Ceiling).
	Ceiling *Summary `json:"ceiling,omitempty"`
	// VsCeiling is this run relative to Ceiling: the share of the most
	// any endpoint could reach with these requests that this one reached.
	VsCeiling *Ratio `json:"vs_ceiling,omitempty"`
	// Rounds lists every round of a run with more than one (--rounds);
	// the rest of the Summary is the round with the median ratio.
	Rounds []Round `json:"rounds,omitempty"`
	// Seed is the seed phase before the attack, when there was one. Its
	// time is not part of the attack's figures.
	Seed *SeedSummary `json:"seed,omitempty"`
}

// Round is one (baseline, scenario[, ceiling]) run of a run with several.
type Round struct {
	Throughput         float64 `json:"throughput"`
	BaselineThroughput float64 `json:"baseline_throughput"`
	Ratio              float64 `json:"ratio"`
	// CeilingThroughput and CeilingRatio (Throughput / CeilingThroughput)
	// are set with RunConfig.Ceiling.
	CeilingThroughput float64 `json:"ceiling_throughput,omitempty"`
	CeilingRatio      float64 `json:"ceiling_ratio,omitempty"`
}

// Latencies are latency percentiles in milliseconds.
type Latencies struct {
	Mean float64 `json:"mean"`
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	Max  float64 `json:"max"`
}

// Ratio is a run's figures divided by the baseline's, from the same process
// on the same cores.
type Ratio struct {
	Throughput float64 `json:"throughput"`
	P50        float64 `json:"p50"`
	P99        float64 `json:"p99"`
}

// reporter accumulates results into metrics, the plot and results.bin.
type reporter struct {
	dir      string
	metrics  vegeta.Metrics
	plot     *plot.Plot
	bin      *os.File
	buf      *bufio.Writer
	enc      vegeta.Encoder
	success  uint64
	events   uint64
	finished bool
}

func newReporter(dir, name string) (*reporter, error) {
	rep := &reporter{dir: dir, plot: newPlot(name)}
	if dir == "" {
		return rep, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("cannot create report dir: %w", err)
	}
	f, err := os.Create(filepath.Join(dir, "results.bin"))
	if err != nil {
		return nil, fmt.Errorf("cannot create results file: %w", err)
	}
	rep.bin = f
	rep.buf = bufio.NewWriterSize(f, 1<<16)
	rep.enc = vegeta.NewEncoder(rep.buf)
	return rep, nil
}

func (rep *reporter) add(r *vegeta.Result, batch int) error {
	rep.metrics.Add(r)
	if r.Code >= 200 && r.Code < 400 {
		rep.success++
	}
	if r.Code == 202 {
		switch kindOf(r.URL) {
		case kindProgress:
			rep.events++
		case kindBatch:
			rep.events += uint64(batch)
		}
	}
	if err := rep.plot.Add(r); err != nil {
		return fmt.Errorf("cannot plot result #%d: %w", r.Seq, err)
	}
	if rep.enc == nil {
		return nil
	}
	// Response bodies of successes are noise in results.bin; keep the
	// bodies of failures, they say why.
	if r.Error == "" {
		r.Body = nil
	}
	if err := rep.enc.Encode(r); err != nil {
		return fmt.Errorf("cannot write result #%d: %w", r.Seq, err)
	}
	return nil
}

func (rep *reporter) progress(w io.Writer, elapsed, total time.Duration) {
	if w == nil {
		return
	}
	m := &rep.metrics
	ok, p99 := 100.0, 0.0
	if m.Requests > 0 {
		ok = 100 * float64(rep.success) / float64(m.Requests)
		p99 = ms(m.Latencies.Quantile(0.99))
	}
	fmt.Fprintf(w, "\r[progress] %.1fs/%s  req=%d ok=%.1f%%  p99=%.1fms   ", elapsed.Seconds(), total, m.Requests, ok, p99)
}

func (rep *reporter) summary(cfg RunConfig, name string) Summary {
	m := &rep.metrics
	m.Close()
	s := Summary{
		Scenario:       name,
		Target:         cfg.Target,
		Rate:           float64(cfg.Rate),
		AchievedRate:   m.Rate,
		Duration:       cfg.Duration,
		Requests:       m.Requests,
		Failed:         m.Requests - rep.success,
		Success:        m.Success,
		Throughput:     m.Throughput,
		AcceptedEvents: rep.events,
		Latencies: Latencies{
			Mean: ms(m.Latencies.Mean), P50: ms(m.Latencies.P50), P90: ms(m.Latencies.P90),
			P99: ms(m.Latencies.P99), Max: ms(m.Latencies.Max),
		},
		StatusCodes: m.StatusCodes,
		Errors:      m.Errors,
	}
	if s.StatusCodes == nil {
		s.StatusCodes = map[string]int{}
	}
	if s.Errors == nil {
		s.Errors = []string{}
	}
	if d := (m.Duration + m.Wait).Seconds(); d > 0 {
		s.EventsPerSec = float64(rep.events) / d
	}
	s.Lost = s.Failed > 0 || s.Requests == 0
	return s
}

// finish writes report.txt, plot.html and summary.json and closes
// results.bin.
func (rep *reporter) finish(s Summary) error {
	rep.finished = true
	rep.plot.Close()
	if rep.dir == "" {
		return nil
	}
	if err := rep.buf.Flush(); err != nil {
		rep.bin.Close()
		return fmt.Errorf("cannot write results.bin: %w", err)
	}
	if err := rep.bin.Close(); err != nil {
		return fmt.Errorf("cannot close results.bin: %w", err)
	}
	if err := writeFile(filepath.Join(rep.dir, "report.txt"), vegeta.NewTextReporter(&rep.metrics).Report); err != nil {
		return err
	}
	if err := writeFile(filepath.Join(rep.dir, "plot.html"), func(w io.Writer) error {
		_, err := rep.plot.WriteTo(w)
		return err
	}); err != nil {
		return err
	}
	return writeJSON(filepath.Join(rep.dir, "summary.json"), s)
}

// abort closes results.bin when the attack failed before finish.
func (rep *reporter) abort() {
	if !rep.finished && rep.bin != nil {
		rep.bin.Close()
	}
}

func writeFile(path string, write func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("cannot create %s: %w", path, err)
	}
	w := bufio.NewWriter(f)
	if err := write(w); err != nil {
		f.Close()
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("cannot close %s: %w", path, err)
	}
	return nil
}

func writeJSON(path string, v any) error {
	return writeFile(path, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	})
}

// TextSummary writes s as a few human lines, the tail of a terminal run.
func TextSummary(w io.Writer, s Summary) {
	fmt.Fprintf(w, "%s: %d requests in %s (%.1f req/s sent, %.1f ok/s), success %.2f%%\n",
		s.Scenario, s.Requests, s.Duration, s.AchievedRate, s.Throughput, 100*s.Success)
	fmt.Fprintf(w, "latency ms: p50 %.2f  p90 %.2f  p99 %.2f  max %.2f\n",
		s.Latencies.P50, s.Latencies.P90, s.Latencies.P99, s.Latencies.Max)
	if s.AcceptedEvents > 0 {
		fmt.Fprintf(w, "accepted events: %d (%.0f events/s)\n", s.AcceptedEvents, s.EventsPerSec)
	}
	fmt.Fprintf(w, "status codes: %v\n", s.StatusCodes)
	if sd := s.Seed; sd != nil {
		fmt.Fprintf(w, "seeded (not measured): %d users x %d items = %d events in %d requests, posted in %.1fs, visible %.1fs later, every user read once in %.1fs\n",
			sd.Users, sd.ItemsPerUser, sd.Events, sd.Requests, sd.PostSeconds, sd.VisibleSeconds, sd.WarmSeconds)
	}
	if s.Baseline != nil && s.VsBaseline != nil {
		fmt.Fprintf(w, "vs baseline (hello-world %.0f ok/s, p99 %.2f ms): throughput x%.3f, p50 x%.2f, p99 x%.2f\n",
			s.Baseline.Throughput, s.Baseline.Latencies.P99, s.VsBaseline.Throughput, s.VsBaseline.P50, s.VsBaseline.P99)
	}
	if s.Ceiling != nil && s.VsCeiling != nil && s.Baseline != nil {
		fmt.Fprintf(w, "vs ceiling (hello-world answering these same requests %.0f ok/s, x%.3f of baseline): throughput x%.3f\n",
			s.Ceiling.Throughput, s.Ceiling.Throughput/s.Baseline.Throughput, s.VsCeiling.Throughput)
	}
	if len(s.Rounds) > 1 {
		fmt.Fprintf(w, "rounds (throughput x baseline, the median one above):")
		for _, r := range s.Rounds {
			fmt.Fprintf(w, " %.3f", r.Ratio)
		}
		fmt.Fprintln(w)
		if s.Ceiling != nil {
			fmt.Fprintf(w, "rounds (throughput x ceiling):")
			for _, r := range s.Rounds {
				fmt.Fprintf(w, " %.3f", r.CeilingRatio)
			}
			fmt.Fprintln(w)
		}
	}
	for i, e := range s.Errors {
		if i == 5 {
			fmt.Fprintf(w, "  ... %d more distinct errors\n", len(s.Errors)-5)
			break
		}
		fmt.Fprintf(w, "  error: %s\n", e)
	}
	if s.Interrupted {
		fmt.Fprintln(w, "INTERRUPTED before the end of its duration")
	}
	if s.Lost {
		fmt.Fprintf(w, "LOST: %d of %d requests failed\n", s.Failed, s.Requests)
	}
}
