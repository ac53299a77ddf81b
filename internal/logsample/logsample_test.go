package logsample

import (
	"testing"
	"time"
)

// TestSampler: the first occurrence of a run is logged at once; within
// Every the rest are counted, and the next logged line carries the count;
// Reset starts a new run.
func TestSampler(t *testing.T) {
	s := Sampler{Every: time.Hour}
	f := func(wantN int, wantOK bool) {
		t.Helper()
		if n, ok := s.Due(); n != wantN || ok != wantOK {
			t.Fatalf("Due() = %d, %v; want %d, %v", n, ok, wantN, wantOK)
		}
	}
	f(1, true)
	f(0, false)
	f(0, false)
	s.last = s.last.Add(-2 * time.Hour) // an Every has passed
	f(3, true)                          // itself and the two skipped
	f(0, false)
	s.Reset()
	f(1, true)
}
