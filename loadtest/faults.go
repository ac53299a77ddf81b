package loadtest

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"syscall"
	"time"

	"github.com/onair/onair/internal/childproc"
)

// The faults `onair loadtest faults` injects into an `onair dev` stack, in
// this order: each dependency frozen (SIGSTOP for Hold, then SIGCONT: a
// stall or a partition) and killed (SIGKILL: onair dev restarts it).
const (
	FaultRedisFreeze      = "redis-freeze"
	FaultRedisKill        = "redis-kill"
	FaultClickHouseFreeze = "clickhouse-freeze"
	FaultClickHouseKill   = "clickhouse-kill"
)

// FaultNames lists every fault in the order they are injected.
func FaultNames() []string {
	return []string{FaultRedisFreeze, FaultRedisKill, FaultClickHouseFreeze, FaultClickHouseKill}
}

// FaultsConfig configures Faults. Zero values mean the documented defaults.
type FaultsConfig struct {
	Load FaultLoadConfig
	// OnairPID is the `onair dev` process whose child servers are frozen
	// and killed. Required.
	OnairPID int
	// Faults to inject, in FaultNames order; nil means all.
	Faults []string
	// Hold is how long a freeze lasts; 0 means 5 s.
	Hold time.Duration
	// Steady is the warm-up and the calm after the faults; 0 means 5 s.
	Steady time.Duration
	// Ready bounds the wait for /readyz after each fault; 0 means 60 s.
	Ready time.Duration
	// ClickHouse and Database are where the accepted events are counted
	// ("" means DefaultClickHouse, DefaultDatabase); Wait bounds how long
	// until all are there (0 means DefaultWait).
	ClickHouse, Database string
	Wait                 time.Duration
	// Log receives progress lines; nil discards them.
	Log io.Writer
}

// FaultResult is one fault's figures.
type FaultResult struct {
	Fault string `json:"fault"`
	// During holds the requests sent from the injection until /readyz
	// answered 200 again.
	During PhaseStats `json:"during"`
	// DownMs is how long the dependency was out: the freeze, or from the
	// kill until onair dev had started a new process.
	DownMs float64 `json:"down_ms"`
	// ReadyMs is from the dependency's return (SIGCONT, or the new
	// process) until /readyz answered 200.
	ReadyMs float64 `json:"ready_after_return_ms"`
}

// FaultsSummary is the outcome of Faults.
type FaultsSummary struct {
	Steady PhaseStats    `json:"steady"`
	Faults []FaultResult `json:"faults"`
	After  PhaseStats    `json:"after"`
	Check  CheckResult   `json:"check"`
	// Lost: an accepted event is missing or doubled in ClickHouse, or
	// ClickHouse did not hold them all within Wait.
	Lost bool `json:"lost"`
}

// Faults runs a steady load against an `onair dev` stack, injects each
// fault in turn and measures what the API did meanwhile and how long the
// stack took to be ready again; at the end it checks that ClickHouse holds
// every accepted event exactly once.
func Faults(ctx context.Context, cfg FaultsConfig) (FaultsSummary, error) {
	if cfg.OnairPID == 0 {
		return FaultsSummary{}, fmt.Errorf("loadtest: FaultsConfig.OnairPID is required")
	}
	if cfg.Faults == nil {
		cfg.Faults = FaultNames()
	}
	for _, f := range cfg.Faults {
		if !slices.Contains(FaultNames(), f) {
			return FaultsSummary{}, fmt.Errorf("loadtest: unknown fault %q, want one of %v", f, FaultNames())
		}
	}
	cfg.Hold = orDefault(cfg.Hold, 5*time.Second)
	cfg.Steady = orDefault(cfg.Steady, 5*time.Second)
	cfg.Ready = orDefault(cfg.Ready, 60*time.Second)
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	e2e := E2EConfig{ClickHouse: cfg.ClickHouse, Database: cfg.Database, Wait: cfg.Wait}
	e2e.setDefaults()
	store, err := openClickHouse(ctx, e2e)
	if err != nil {
		return FaultsSummary{}, err
	}
	defer store.Close()
	start := time.Now().Add(-time.Minute)

	load, err := StartFaultLoad(cfg.Load)
	if err != nil {
		return FaultsSummary{}, err
	}
	results, err := injectAll(ctx, cfg, load)
	stats, accepted := load.Stop()
	if err != nil {
		return FaultsSummary{}, err
	}
	byPhase := map[string]PhaseStats{}
	for _, p := range stats {
		byPhase[p.Phase] = p
	}
	s := FaultsSummary{Steady: byPhase["steady"], After: byPhase["after"]}
	for _, r := range results {
		r.During = byPhase[r.Fault]
		s.Faults = append(s.Faults, r)
	}
	fmt.Fprintf(cfg.Log, "checking %d accepted events in ClickHouse\n", len(accepted))
	counts, caughtUp := waitEvents(ctx, store, load.Prefix(), start, len(accepted), e2e.Wait)
	s.Check = Check(accepted, counts)
	s.Lost = !caughtUp || !s.Check.OK()
	truncate(&s.Check)
	return s, nil
}

// injectAll runs the phases: warmup, steady, one per fault, after.
func injectAll(ctx context.Context, cfg FaultsConfig, load *FaultLoad) ([]FaultResult, error) {
	api := cfg.Load.URL
	if err := waitReady(ctx, api, cfg.Ready); err != nil {
		return nil, err
	}
	sleep(ctx, cfg.Steady)
	load.Phase("steady")
	sleep(ctx, cfg.Steady)
	var out []FaultResult
	for _, f := range cfg.Faults {
		fmt.Fprintf(cfg.Log, "%s: injecting\n", f)
		load.Phase(f)
		r, err := inject(ctx, cfg, f)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		fmt.Fprintf(cfg.Log, "%s: down %.0f ms, ready %.0f ms after it returned\n", f, r.DownMs, r.ReadyMs)
		out = append(out, r)
		load.Phase("calm after " + f)
		sleep(ctx, time.Second)
	}
	load.Phase("after")
	sleep(ctx, cfg.Steady)
	return out, ctx.Err()
}

// inject applies one fault and waits until the stack is ready again.
func inject(ctx context.Context, cfg FaultsConfig, fault string) (FaultResult, error) {
	name := "redis-server"
	if fault == FaultClickHouseFreeze || fault == FaultClickHouseKill {
		name = "clickhouse-server"
	}
	pid, err := childproc.FindChild(cfg.OnairPID, name)
	if err != nil {
		return FaultResult{}, err
	}
	r := FaultResult{Fault: fault}
	t0 := time.Now()
	var back time.Time
	if fault == FaultRedisFreeze || fault == FaultClickHouseFreeze {
		if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
			return r, err
		}
		sleep(ctx, cfg.Hold)
		if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
			return r, err
		}
		back = time.Now()
	} else {
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			return r, err
		}
		deadline := time.Now().Add(cfg.Ready)
		for {
			if p, err := childproc.FindChild(cfg.OnairPID, name); err == nil && p != pid {
				break
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				return r, fmt.Errorf("%s was not restarted within %s of its kill", name, cfg.Ready)
			}
			time.Sleep(5 * time.Millisecond)
		}
		back = time.Now()
	}
	r.DownMs = ms(back.Sub(t0))
	if err := waitReady(ctx, cfg.Load.URL, cfg.Ready); err != nil {
		return r, err
	}
	r.ReadyMs = ms(time.Since(back))
	return r, nil
}

// waitReady polls /readyz until it answers 200.
func waitReady(ctx context.Context, api string, limit time.Duration) error {
	c := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(limit)
	for {
		resp, err := c.Get(api + "/readyz")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("not ready after %s: %s", limit, body)
			}
		} else if time.Now().After(deadline) {
			return fmt.Errorf("not ready after %s: %w", limit, err)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitEvents polls ClickHouse until it holds want rows of the run (or
// wait passes) and returns the rows per event id.
func waitEvents(ctx context.Context, store eventStore, prefix string, since time.Time, want int, wait time.Duration) (map[string]uint64, bool) {
	deadline := time.Now().Add(wait)
	for {
		n, err := store.Distinct(ctx, prefix, since)
		if err == nil && n >= uint64(want) || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	counts, err := store.Counts(ctx, prefix, since)
	if err != nil {
		return map[string]uint64{}, false
	}
	return counts, true
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}
