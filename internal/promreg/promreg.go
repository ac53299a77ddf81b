// Package promreg registers Prometheus collectors on a registry that other
// components may share: every onair package registers through Register, so
// two components (two api Servers, two Aggregators in one process, a test
// running several) on one registry share the series instead of panicking
// as MustRegister would.
package promreg

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Register registers c on reg and returns it, or returns the identical
// collector already registered there. reg nil registers nothing (c still
// works, unexported). Any other registration error (a name clash with a
// different collector) is returned.
func Register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if reg == nil {
		return c, nil
	}
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if old, ok := are.ExistingCollector.(C); ok {
				return old, nil
			}
		}
		return c, err
	}
	return c, nil
}
