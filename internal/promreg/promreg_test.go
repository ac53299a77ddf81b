package promreg

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestRegisterShares(t *testing.T) {
	reg := prometheus.NewRegistry()
	opts := prometheus.CounterOpts{Name: "onair_test_things_total", Help: "Things."}
	a, err := Register(reg, prometheus.NewCounter(opts))
	if err != nil {
		t.Fatal(err)
	}
	b, err := Register(reg, prometheus.NewCounter(opts))
	if err != nil || b != a {
		t.Fatalf("second registration: %v, same collector %v; want the first one back", err, b == a)
	}
	if _, err := Register(reg, prometheus.NewGauge(prometheus.GaugeOpts{Name: "onair_test_things_total", Help: "Other."})); err == nil {
		t.Fatal("a different collector under the same name registered")
	}
	if c, err := Register[prometheus.Counter](nil, prometheus.NewCounter(opts)); err != nil || c == nil {
		t.Fatalf("nil registry: %v", err)
	}
}
