// Package memlimit sets the Go runtime's soft memory limit (GOMEMLIMIT)
// for an onair process, so that it stays inside its container: near the
// limit the collector runs more often and returns freed pages to the
// system, instead of letting the heap grow to twice its live size (GOGC)
// and keeping what it once used.
package memlimit

import (
	"errors"
	"fmt"
	"math"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
)

// CgroupShare is the share of a cgroup's memory.max taken as the limit when
// none is given: the rest is for memory the runtime does not count (thread
// stacks of cgo, the page cache the kernel charges to the cgroup).
const CgroupShare = 0.9

// cgroupMax is cgroup v2's memory limit file of this process.
const cgroupMax = "/sys/fs/cgroup/memory.max"

// Source says where a limit came from.
type Source string

// Sources of a limit.
const (
	FromFlag    Source = "flag"
	FromEnv     Source = "GOMEMLIMIT"
	FromCgroup  Source = "cgroup"
	FromDefault Source = "default"
	None        Source = "none"
)

// Apply sets the limit: value when given ("1536MiB", "2GiB", "off"), else
// the GOMEMLIMIT the runtime already read, else the lower of def (0: none)
// and CgroupShare of the cgroup's memory.max. It returns the limit in bytes (0: none)
// and where it came from.
func Apply(value string, def int64) (int64, Source, error) {
	limit, src, err := choose(value, os.Getenv("GOMEMLIMIT"), readCgroup, def)
	if err != nil {
		return 0, None, err
	}
	if src == FromEnv {
		return limit, src, nil // the runtime applied it at start
	}
	if limit > 0 {
		debug.SetMemoryLimit(limit)
	} else {
		debug.SetMemoryLimit(math.MaxInt64)
	}
	return limit, src, nil
}

// choose is Apply's decision, without side effects.
func choose(value, env string, cgroup func() (int64, bool), def int64) (int64, Source, error) {
	if value != "" {
		n, err := Parse(value)
		if err != nil {
			return 0, None, fmt.Errorf("--memory-limit: %w", err)
		}
		return n, FromFlag, nil
	}
	if env != "" {
		n, err := Parse(env)
		if err != nil {
			return 0, None, fmt.Errorf("GOMEMLIMIT: %w", err)
		}
		return n, FromEnv, nil
	}
	if n, ok := cgroup(); ok {
		share := int64(float64(n) * CgroupShare)
		if def > 0 && def < share {
			return def, FromDefault, nil // a role's default is never above its container
		}
		return share, FromCgroup, nil
	}
	if def > 0 {
		return def, FromDefault, nil
	}
	return 0, None, nil
}

// readCgroup reads memory.max; ok is false without a limit.
func readCgroup() (int64, bool) {
	b, err := os.ReadFile(cgroupMax)
	if err != nil {
		return 0, false
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	return n, err == nil && n > 0
}

var units = []struct {
	suffix string
	mult   int64
}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}}

// Parse reads a size the way GOMEMLIMIT does: a number of bytes with an
// optional B, KiB, MiB, GiB or TiB suffix; "off" means no limit (0).
func Parse(s string) (int64, error) {
	if s == "off" {
		return 0, nil
	}
	mult := int64(1)
	num := s
	for _, u := range units {
		if rest, ok := strings.CutSuffix(s, u.suffix); ok {
			num, mult = rest, u.mult
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	switch {
	case err != nil || n < 0:
		return 0, fmt.Errorf("%q is not a size (want e.g. 1536MiB, 2GiB or off)", s)
	case n > math.MaxInt64/mult:
		return 0, errors.New("size too large")
	}
	return n * mult, nil
}
