package main

import (
	"log/slog"

	"github.com/onair/onair/internal/memlimit"
)

// devMemoryLimit is onair dev's soft memory limit when neither the flag,
// GOMEMLIMIT nor a cgroup says otherwise: with every role and the embedded
// Kafka in one process, the live heap at the mixed load of 15 000 events/s
// stays under ~700 MB, and the limit keeps resident memory under 2 GB
// although GOGC is 400 (BENCHMARKS.md, the soak row).
const devMemoryLimit = 1536 << 20

// applyMemoryLimit sets the process's soft memory limit (see
// internal/memlimit) and logs it with where it came from.
func applyMemoryLimit(cfg *config, def int64, log *slog.Logger) error {
	limit, src, err := memlimit.Apply(cfg.MemoryLimit, def)
	if err != nil {
		return err
	}
	if limit == 0 {
		log.Info("no memory limit", "source", src)
		return nil
	}
	log.Info("memory limit", "mib", limit>>20, "source", src)
	return nil
}
