// Package logsample keeps a failure that repeats from flooding the log: the
// first occurrence of a run is logged, then at most one line per interval,
// saying how many occurred since the last line. Metrics count every one.
package logsample

import (
	"sync"
	"time"
)

// Sampler decides which occurrences of one repeated failure are logged.
// The zero value logs every occurrence; set Every. Safe for concurrent use.
type Sampler struct {
	// Every is the least time between two logged occurrences.
	Every time.Duration

	mu     sync.Mutex
	last   time.Time // when an occurrence was last logged; zero: none yet
	missed int       // occurrences since then, not logged
}

// Due records one occurrence and reports whether to log it, with n, the
// occurrences this line stands for (itself and the ones skipped since the
// last logged line).
func (s *Sampler) Due() (n int, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	s.missed++
	if !s.last.IsZero() && now.Sub(s.last) < s.Every {
		return 0, false
	}
	n, s.missed, s.last = s.missed, 0, now
	return n, true
}

// Reset ends a run (the failure stopped): the next occurrence is logged at
// once.
func (s *Sampler) Reset() {
	s.mu.Lock()
	s.last, s.missed = time.Time{}, 0
	s.mu.Unlock()
}
