package wallet

import "github.com/prometheus/client_golang/prometheus"

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
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.moves, m.failures, m.refused, m.coins} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
