// Package breaker keeps a dependency that is down from slowing every
// request: after a few consecutive failures of Redis or ClickHouse calls the
// circuit opens and calls fail at once with an *OpenError, instead of each
// one dialling and waiting for its deadline. While open, one call is let
// through every OpenFor as a probe (half-open); its success closes the
// circuit. The state machine is sony/gobreaker's; this package adds what
// onair needs around it: which errors mean "the dependency is failing"
// (RedisHook, ClickHouse), an error that says since when and why, state
// changes logged once (failed probes by sample, with a count) and metrics.
package breaker

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sony/gobreaker/v2"

	"github.com/onair/onair/internal/logsample"
)

// Config configures a Breaker.
type Config struct {
	// Name names the dependency ("redis", "clickhouse") in errors, logs and
	// the metrics' dependency label. Required.
	Name string
	// Failures is how many consecutive failed calls open the circuit;
	// 0 means 5: a stalled dependency fails every call in flight at once,
	// while a slow moment under load has successes in between.
	Failures int
	// FailingFor is how long failures must go on, with no success between
	// them, before the circuit opens (besides Failures of them); 0 means
	// 250 ms. Under load many calls are in flight at once, and a stall
	// shorter than their deadlines (a long script, a collection, cores
	// taken by others) fails all of them together: counting alone, such a
	// moment opened the circuit and failed every call for OpenFor more,
	// many times a minute. A dependency that is down keeps failing, and
	// opens it FailingFor later.
	FailingFor time.Duration
	// OpenFor is how long the circuit stays open before one call probes
	// the dependency again; 0 means 250 ms. It bounds how long onair takes
	// to use a dependency that came back.
	OpenFor time.Duration
	// Registerer receives the onair_breaker_* metrics; nil means none.
	// Breakers of several dependencies may share one.
	Registerer prometheus.Registerer
	// Log receives state changes; nil discards them.
	Log *slog.Logger
}

// ErrOpen matches (errors.Is) every error a Breaker returns instead of
// making a call.
var ErrOpen = errors.New("circuit open")

// OpenError is returned instead of a call while the circuit is open.
type OpenError struct {
	// Name is the dependency.
	Name string
	// Since is when the circuit opened.
	Since time.Time
	// Cause is the failure that opened it (or that the last probe met).
	Cause error
}

// Error says which dependency is out, for how long and why; /readyz shows it.
func (e *OpenError) Error() string {
	return fmt.Sprintf("%s unavailable for %s (circuit open): %v", e.Name, time.Since(e.Since).Round(time.Millisecond), e.Cause)
}

// Is makes errors.Is(err, ErrOpen) true.
func (e *OpenError) Is(target error) bool { return target == ErrOpen }

// Breaker is one dependency's circuit. It is safe for concurrent use.
type Breaker struct {
	name    string
	openFor time.Duration
	cb      *gobreaker.TwoStepCircuitBreaker[struct{}]
	log     *slog.Logger
	m       *metrics

	// failingSince is when the current run of failures began; only
	// ReadyToTrip touches it, under gobreaker's lock.
	failingSince time.Time

	mu     sync.Mutex
	since  time.Time // when the circuit opened; zero while closed
	cause  error     // the latest failure
	probes int       // failed probes since it opened
	// probeLog samples the "still down" lines of failed probes.
	probeLog logsample.Sampler
}

// New validates cfg and returns a closed Breaker.
func New(cfg Config) (*Breaker, error) {
	if cfg.Name == "" {
		return nil, errors.New("breaker: Config.Name is required")
	}
	if cfg.Failures < 0 || cfg.OpenFor < 0 {
		return nil, fmt.Errorf("breaker %s: Failures (%d) and OpenFor (%s) must not be negative", cfg.Name, cfg.Failures, cfg.OpenFor)
	}
	if cfg.Failures == 0 {
		cfg.Failures = 5
	}
	if cfg.OpenFor == 0 {
		cfg.OpenFor = 250 * time.Millisecond
	}
	if cfg.FailingFor <= 0 {
		cfg.FailingFor = 250 * time.Millisecond
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, fmt.Errorf("breaker %s: %w", cfg.Name, err)
	}
	b := &Breaker{name: cfg.Name, openFor: cfg.OpenFor, log: cfg.Log, m: m,
		probeLog: logsample.Sampler{Every: 10 * time.Second}}
	failures := uint32(cfg.Failures)
	b.cb = gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{
		Name:        cfg.Name,
		MaxRequests: 1, // one probe at a time while half-open
		Timeout:     cfg.OpenFor,
		// Called under gobreaker's lock after every failure while closed.
		ReadyToTrip: func(c gobreaker.Counts) bool {
			now := time.Now()
			if c.ConsecutiveFailures == 1 {
				b.failingSince = now
			}
			return c.ConsecutiveFailures >= failures && now.Sub(b.failingSince) >= cfg.FailingFor
		},
		// A caller that gave up (client gone) says nothing about the
		// dependency.
		IsExcluded:    func(err error) bool { return errors.Is(err, errExcluded) },
		OnStateChange: func(_ string, from, to gobreaker.State) { b.changed(from, to) },
	})
	b.m.state.WithLabelValues(b.name).Set(0)
	return b, nil
}

// errExcluded marks an outcome that counts neither way.
var errExcluded = errors.New("excluded")

// Allow asks to make one call. With a nil error the call may go ahead, and
// done must be called once with its outcome: nil when the dependency
// answered (even with an error of its own, like a failed script), Excluded
// when the caller gave up for reasons of its own, else the failure.
// Otherwise the circuit is open and err is an *OpenError.
func (b *Breaker) Allow() (done func(fault error), err error) {
	d, err := b.cb.Allow()
	if err != nil {
		b.m.rejected.WithLabelValues(b.name).Inc()
		return nil, b.openError()
	}
	return func(fault error) {
		if fault != nil && !errors.Is(fault, errExcluded) {
			b.mu.Lock()
			b.cause = fault
			b.mu.Unlock()
		}
		d(fault)
	}, nil
}

// note reports the outcome of work that followed a call already reported
// (rows read after a query started): a failure counts as one more failed
// call. Nothing is noted while the circuit is open.
func (b *Breaker) note(fault error) {
	if fault == nil {
		return
	}
	if done, err := b.cb.Allow(); err == nil {
		b.mu.Lock()
		b.cause = fault
		b.mu.Unlock()
		done(fault)
	}
}

// Excluded wraps err as an outcome that neither opens nor closes the
// circuit (the caller's own cancellation).
func Excluded(err error) error { return fmt.Errorf("%w: %w", errExcluded, err) }

// Err returns nil while the circuit is closed, else an *OpenError; it
// makes no call.
func (b *Breaker) Err() error {
	if b.cb.State() == gobreaker.StateClosed {
		return nil
	}
	return b.openError()
}

func (b *Breaker) openError() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	since := b.since
	if since.IsZero() {
		since = time.Now()
	}
	return &OpenError{Name: b.name, Since: since, Cause: b.cause}
}

// changed runs under gobreaker's lock: it must not call b.cb.
func (b *Breaker) changed(from, to gobreaker.State) {
	b.m.state.WithLabelValues(b.name).Set(float64(to))
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case from == gobreaker.StateClosed && to == gobreaker.StateOpen:
		b.since, b.probes = time.Now(), 0
		b.m.opened.WithLabelValues(b.name).Inc()
		b.log.Warn("dependency unavailable: circuit opened, calls fail fast until a probe succeeds",
			"dependency", b.name, "probe_every", b.openFor, "err", b.cause)
	case from == gobreaker.StateHalfOpen && to == gobreaker.StateOpen:
		b.probes++
		if n, ok := b.probeLog.Due(); ok {
			b.log.Warn("dependency still unavailable", "dependency", b.name, "down_for", time.Since(b.since).Round(time.Millisecond),
				"failed_probes", n, "err", b.cause)
		}
	case to == gobreaker.StateClosed:
		b.log.Info("dependency available again: circuit closed", "dependency", b.name,
			"down_for", time.Since(b.since).Round(time.Millisecond), "failed_probes", b.probes)
		b.since, b.probes = time.Time{}, 0
		b.probeLog.Reset()
	}
}

type metrics struct {
	state    *prometheus.GaugeVec
	opened   *prometheus.CounterVec
	rejected *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		state: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "onair_breaker_state",
			Help: "Circuit state per dependency: 0 closed (calls go through), 1 half-open (one probe), 2 open (calls fail fast)."},
			[]string{"dependency"}),
		opened: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "onair_breaker_opened_total",
			Help: "Times a dependency's circuit opened after consecutive failures."}, []string{"dependency"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "onair_breaker_rejected_total",
			Help: "Calls failed fast because the dependency's circuit was open."}, []string{"dependency"}),
	}
	if reg == nil {
		return m, nil
	}
	// Breakers of several dependencies share the vectors.
	var err error
	if m.state, err = register(reg, m.state); err != nil {
		return nil, err
	}
	if m.opened, err = register(reg, m.opened); err != nil {
		return nil, err
	}
	if m.rejected, err = register(reg, m.rejected); err != nil {
		return nil, err
	}
	return m, nil
}

// register registers c, or returns the collector already registered under
// its name.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if prev, ok := are.ExistingCollector.(C); ok {
				return prev, nil
			}
		}
		return c, err
	}
	return c, nil
}
