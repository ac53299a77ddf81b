package aggregate

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/onair/onair/ingest"
)

// winners is what the documented rules (docs/api.md, History, "Newest
// wins" and "Ties") say is stored for a set of reports: written from that
// text, not from the implementation's ordering functions.
type winners struct {
	touchTS     int64
	touchDevice string
	hasPos      bool
	posTS       int64
	positionMs  uint64
	durationMs  uint64
}

// touchBeats: r is newer than cur for updated_at and device: the newer
// ts; with equal ts, the device that sorts last (byte order).
func touchBeats(r, cur report) bool {
	return r.ts > cur.ts || (r.ts == cur.ts && strings.Compare(r.device, cur.device) > 0)
}

// posBeats: r, a report carrying a position, is newer than cur for the
// resume point: the newer ts; with equal ts, the larger position_ms, then
// the larger duration_ms.
func posBeats(r, cur report) bool {
	if r.ts != cur.ts {
		return r.ts > cur.ts
	}
	if r.positionMs != cur.positionMs {
		return r.positionMs > cur.positionMs
	}
	return r.durationMs > cur.durationMs
}

// model applies the rules to every report ever seen: the newest report
// sets updated_at and device, the newest report that carries a position
// (position_ms > 0; a play carries none) sets the resume point.
func model(rs []report) winners {
	var w winners
	var touch, pos report
	for i, r := range rs {
		if i == 0 || touchBeats(r, touch) {
			touch = r
		}
		if !r.play && r.positionMs > 0 && (!w.hasPos || posBeats(r, pos)) {
			pos, w.hasPos = r, true
		}
	}
	w.touchTS, w.touchDevice = touch.ts, touch.device
	if w.hasPos {
		w.posTS, w.positionMs, w.durationMs = pos.ts, pos.positionMs, pos.durationMs
	}
	return w
}

// winnersOf is what a state would store.
func winnersOf(s *state) winners {
	return winners{touchTS: s.touch.ts, touchDevice: s.touch.device,
		hasPos: s.pos.ts != 0, posTS: s.pos.ts, positionMs: s.pos.positionMs, durationMs: s.pos.durationMs}
}

// tieCounts counts, over a set of reports, how often each tie-break of the
// rules decides between the newest reports.
type tieCounts struct{ device, position, duration int }

func (c *tieCounts) count(rs []report, w winners) {
	for _, r := range rs {
		if r.ts == w.touchTS && r.device != w.touchDevice {
			c.device++
			break
		}
	}
	for _, r := range rs {
		if r.play || r.positionMs == 0 || r.ts != w.posTS {
			continue
		}
		if r.positionMs != w.positionMs {
			c.position++
			break
		}
		if r.durationMs != w.durationMs {
			c.duration++
			break
		}
	}
}

// randomReports draws reports for one key with many ties on every field the
// rules order by, duplicates and replays, plays and accidental zeros.
// withZeroDuration lets position reports have an unknown (0) duration.
func randomReports(rng *rand.Rand, withZeroDuration bool) []report {
	n := 1 + rng.IntN(12)
	rs := make([]report, 0, n*2)
	devices := []string{"", "ios", "ios-2", "web", "Web"}
	for range n {
		r := report{
			ts:         1000 + int64(rng.IntN(4)),         // many ts ties
			positionMs: uint64(rng.IntN(3)) * 1000,        // ties, and zeros
			durationMs: uint64(1+rng.IntN(3)) * 1_000_000, // ties and not
			device:     devices[rng.IntN(len(devices))],   // ties and not
			eventID:    string(rune('a' + rng.IntN(4))),
			play:       rng.IntN(5) == 0,
		}
		if withZeroDuration && rng.IntN(4) == 0 {
			r.durationMs = 0
		}
		if r.play {
			r.positionMs, r.durationMs = 0, 0
		}
		rs = append(rs, r)
		if rng.IntN(3) == 0 { // duplicates and replays
			rs = append(rs, r)
		}
	}
	return rs
}

func TestMergeMatchesModelUnderAnyOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var ties tieCounts
	for iter := 0; iter < 2000; iter++ {
		rs := randomReports(rng, true)
		want := model(rs)
		ties.count(rs, want)
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
			if w := winnersOf(&got); w != want {
				t.Fatalf("iteration %d: merge stores %+v, the rules say %+v\n reports %+v", iter, w, want, rs)
			}
		}
	}
	// every tie-break decided some cases, or the test shows nothing about it
	if ties.device < 100 || ties.position < 100 || ties.duration < 100 {
		t.Fatalf("tie-breaks exercised too rarely: %+v", ties)
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
