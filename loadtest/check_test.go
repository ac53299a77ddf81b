package loadtest

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestCheck(t *testing.T) {
	f := func(accepted []string, counts map[string]uint64, missing []string, dup map[string]uint64, unexpected []string) {
		t.Helper()
		r := Check(accepted, counts)
		if !reflect.DeepEqual(r.Missing, missing) || !reflect.DeepEqual(r.Duplicated, dup) || !reflect.DeepEqual(r.Unexpected, unexpected) {
			t.Fatalf("Check(%v, %v) = missing %v dup %v unexpected %v; want %v %v %v",
				accepted, counts, r.Missing, r.Duplicated, r.Unexpected, missing, dup, unexpected)
		}
		if r.OK() != (len(missing) == 0 && len(dup) == 0) {
			t.Fatalf("OK() = %v with missing %v dup %v", r.OK(), missing, dup)
		}
	}
	none := map[string]uint64{}
	// clean
	f([]string{"a", "b", "c"}, map[string]uint64{"a": 1, "b": 1, "c": 1}, []string{}, none, []string{})
	// missing: accepted but absent, or present with zero rows
	f([]string{"a", "b", "c"}, map[string]uint64{"a": 1, "c": 0}, []string{"b", "c"}, none, []string{})
	// duplicated
	f([]string{"a", "b"}, map[string]uint64{"a": 1, "b": 3}, []string{}, map[string]uint64{"b": 3}, []string{})
	// both
	f([]string{"a", "b", "c"}, map[string]uint64{"a": 2, "c": 1}, []string{"b"}, map[string]uint64{"a": 2}, []string{})
	// an accepted id listed twice (a retried request) is one event
	f([]string{"a", "a"}, map[string]uint64{"a": 1}, []string{}, none, []string{})
	// unexpected: a client timeout that landed; duplicated even if not accepted
	f([]string{"a"}, map[string]uint64{"a": 1, "x": 2}, []string{}, map[string]uint64{"x": 2}, []string{"x"})
	// nothing at all
	f(nil, nil, []string{}, none, []string{})

	r := Check([]string{"a", "b", "c"}, map[string]uint64{"a": 1, "b": 2})
	if r.Accepted != 3 || r.Found != 2 {
		t.Fatalf("accepted %d found %d, want 3 2", r.Accepted, r.Found)
	}
}

// TestE2EExactness runs the e2e driver against the fake API, whose event
// record stands in for ClickHouse, and checks that it notices a missing
// and a duplicated event and measures visibility.
func TestE2EExactness(t *testing.T) {
	f := func(drop, dup int, wantLost bool) *E2ESummary {
		t.Helper()
		fk := newFakeAPI(t)
		fk.dropEvery, fk.dupEvery = drop, dup
		cfg := E2EConfig{
			RunConfig:   RunConfig{Rate: 50, Duration: 600 * time.Millisecond, Users: 100, Items: 1000, Batch: 10, Target: fk.url, TokenSecret: fk.secret},
			Wait:        300 * time.Millisecond,
			SampleEvery: 5,
		}
		cfg.setDefaults()
		if err := cfg.validate(); err != nil {
			t.Fatal(err)
		}
		s, err := e2e(context.Background(), cfg, fk)
		if err != nil {
			t.Fatal(err)
		}
		if s.Lost != wantLost {
			t.Fatalf("drop %d dup %d: lost=%v, want %v: %+v", drop, dup, s.Lost, wantLost, s)
		}
		if s.AcceptedEvents != int(s.Run.AcceptedEvents) || s.AcceptedEvents != 10*int(s.Run.Requests) || s.AcceptedEvents == 0 {
			t.Fatalf("accepted %d events, run says %d for %d requests", s.AcceptedEvents, s.Run.AcceptedEvents, s.Run.Requests)
		}
		for _, id := range s.Check.Missing {
			if !strings.HasPrefix(id, "lt-"+s.RunID+"-") {
				t.Fatalf("missing id %q lacks the run prefix", id)
			}
		}
		return &s
	}

	s := f(0, 0, false)
	if !s.Complete || s.MissingCount != 0 || s.DuplicatedCount != 0 || s.EventsPerSec <= 0 {
		t.Fatalf("clean run: %+v", s)
	}
	if v := s.Visibility; v.Samples == 0 || v.TimedOut != 0 || v.P50 <= 0 || v.Max < v.P99 {
		t.Fatalf("clean run visibility: %+v", v)
	}

	s = f(37, 0, true)
	if s.Complete || s.MissingCount == 0 || s.DuplicatedCount != 0 || s.MissingCount != s.AcceptedEvents/37 {
		t.Fatalf("dropping run: complete=%v missing %d of %d, dup %d", s.Complete, s.MissingCount, s.AcceptedEvents, s.DuplicatedCount)
	}

	s = f(0, 41, true)
	if !s.Complete || s.MissingCount != 0 || s.DuplicatedCount != s.AcceptedEvents/41 || s.DuplicatedCount == 0 {
		t.Fatalf("duplicating run: missing %d, dup %d of %d", s.MissingCount, s.DuplicatedCount, s.AcceptedEvents)
	}
	for _, n := range s.Check.Duplicated {
		if n != 2 {
			t.Fatalf("duplicated count %d, want 2", n)
		}
	}
}
