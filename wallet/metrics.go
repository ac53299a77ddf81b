package wallet

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/onair/onair/internal/promreg"
)

type metrics struct {
	moves    *prometheus.CounterVec // kind, result
	failures *prometheus.CounterVec // op
	refused  *prometheus.CounterVec // reason
	coins    *prometheus.CounterVec // kind
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		moves: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "onair_wallet_movements_total",
			Help: "Ledger movements asked for, by kind (recharge, gift) and result (ok, replay, pending)."}, []string{"kind", "result"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "onair_wallet_failures_total",
			Help: "Ledger calls that failed (PostgreSQL did not answer or erred), by operation."}, []string{"op"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "onair_wallet_refused_total",
			Help: "Ledger requests refused, by reason (insufficient_funds, order_conflict, no_gift, ...)."}, []string{"reason"}),
		coins: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "onair_wallet_coins_total",
			Help: "Coins moved, by kind (recharge, gift)."}, []string{"kind"}),
	}
	for _, v := range []**prometheus.CounterVec{&m.moves, &m.failures, &m.refused, &m.coins} {
		var err error
		if *v, err = promreg.Register(reg, *v); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// counters registers each of cs on reg (promreg: a registry shared by two
// components in one process shares the series), replacing it by the one
// already registered.
func counters(reg prometheus.Registerer, cs ...*prometheus.Counter) error {
	for _, c := range cs {
		var err error
		if *c, err = promreg.Register(reg, *c); err != nil {
			return err
		}
	}
	return nil
}

// pollSteps runs step until ctx ends: at once again after a step that
// filled its batch, after poll otherwise, and after backoff when it failed
// (failed logs and counts it). The relay and the ledger copier both run so.
func pollSteps(ctx context.Context, step func(context.Context) (int, error), batch int, poll, backoff time.Duration, failed func(error)) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n, err := step(ctx)
		wait := poll
		switch {
		case err != nil && ctx.Err() == nil:
			failed(err)
			wait = backoff
		case n == batch:
			wait = 0
		}
		t.Reset(wait)
	}
}
