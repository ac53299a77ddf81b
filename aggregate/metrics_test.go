package aggregate

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/onair/onair/history"
)

// TestSharedRegistry: two Aggregators and two history Stores on one
// registry share the series (MustRegister would panic on the second).
func TestSharedRegistry(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 1)
	reg := prometheus.NewRegistry()
	for range 2 {
		if _, err := history.New(history.Config{Redis: h.rdb, Prefix: h.prefix, Registerer: reg}); err != nil {
			t.Fatal(err)
		}
		cfg := h.config()
		cfg.Registerer = reg
		h.start(cfg) // stopped at cleanup
	}
}
