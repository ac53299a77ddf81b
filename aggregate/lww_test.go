package aggregate

import (
	"math/rand/v2"
	"testing"

	"github.com/onair/onair/ingest"
)

// model is the obviously-correct definition of the LWW rules: scan every
// report ever seen and pick the winners.
func model(rs []report) state {
	var s state
	for i := range rs {
		r := rs[i]
		if s.touch.ts == 0 || touchNewer(&r, &s.touch) {
			s.touch = r
		}
	}
	for i := range rs {
		r := rs[i]
		if r.positionMs == 0 {
			continue
		}
		if s.pos.ts == 0 || posNewer(&r, &s.pos) {
			s.pos = r
		}
	}
	return s
}

func TestMergeMatchesModelUnderAnyOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for iter := 0; iter < 2000; iter++ {
		n := 1 + rng.IntN(12)
		rs := make([]report, 0, n*2)
		for i := 0; i < n; i++ {
			r := report{
				ts:         1000 + int64(rng.IntN(5)),  // many ties
				positionMs: uint64(rng.IntN(3)) * 1000, // many zeros
				durationMs: 3000,
				device:     []string{"ios", "web"}[rng.IntN(2)],
				eventID:    string(rune('a' + rng.IntN(4))),
				play:       rng.IntN(4) == 0,
			}
			if r.play {
				r.positionMs, r.durationMs = 0, 0
			}
			rs = append(rs, r)
			if rng.IntN(3) == 0 { // duplicates and replays
				rs = append(rs, r)
			}
		}
		want := model(rs)
		for perm := 0; perm < 4; perm++ {
			rng.Shuffle(len(rs), func(i, j int) { rs[i], rs[j] = rs[j], rs[i] })
			// Split into two windows at an arbitrary point, as a failed
			// write-back's state joins what came after it: merging the
			// window states must equal adding everything to one.
			var got, later state
			cut := rng.IntN(len(rs) + 1)
			for _, r := range rs[:cut] {
				got.add(r)
			}
			for _, r := range rs[cut:] {
				later.add(r)
			}
			if perm%2 == 0 {
				later.merge(&got)
				got = later
			} else {
				got.merge(&later)
			}
			// What reaches storage: the touch's (ts, device) and the position.
			if got.touch.ts != want.touch.ts || got.touch.device != want.touch.device || got.pos.ts != want.pos.ts ||
				got.pos.positionMs != want.pos.positionMs || got.pos.durationMs != want.pos.durationMs {
				t.Fatalf("iteration %d: order-dependent result\n got  %+v\n want %+v\n reports %+v", iter, got, want, rs)
			}
		}
	}
}

func TestZeroPositionKeepsResumePoint(t *testing.T) {
	var s state
	s.add(report{ts: 10, positionMs: 61000, durationMs: 1800000})
	s.add(report{ts: 20, positionMs: 0, durationMs: 1800000, device: "ios"})
	if s.touch.ts != 20 || s.touch.device != "ios" {
		t.Fatalf("touch = %+v, want the ts=20 report", s.touch)
	}
	if s.pos.positionMs != 61000 {
		t.Fatalf("resume point = %d, want 61000 (a zero report must not wipe it)", s.pos.positionMs)
	}
	s.add(report{ts: 5, positionMs: 99000})
	if s.pos.positionMs != 61000 {
		t.Fatalf("a late older report moved progress to %d", s.pos.positionMs)
	}
}

func TestReportOfPlayHasNoPosition(t *testing.T) {
	r := reportOf(&ingest.Event{Type: ingest.TypePlay, TS: 7, ListenedMs: 30000, PositionMs: 5})
	if !r.play || r.positionMs != 0 {
		t.Fatalf("play report = %+v, want play with no position", r)
	}
}
