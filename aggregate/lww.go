package aggregate

import (
	"github.com/onair/onair/ingest"
)

// key identifies one history entry. Records are keyed by user, so one
// partition (and so one aggregator) owns every key of a user.
type key struct {
	user uint64
	item uint64
	biz  ingest.Biz
}

// state is the collapsed view of every progress/play report seen for one key
// since the last write-back. It is a join of two independent maxima, which
// makes merge commutative, associative and idempotent: the result does not
// depend on the order reports arrive in, nor on replays.
//
//   - touch: the newest report of any kind (progress or play). It decides
//     updated_at, the device and whether the timeline moves.
//   - pos: the newest report carrying a non-zero position. A report with
//     position 0 (a stop sent before playback began, or a play event, which has
//     no position) moves the timeline but never wipes a resume point.
//
// "Newest" orders by client ts, then by the tie-breaks of touchNewer and
// posNewer, which history's apply.lua shares.
type state struct {
	touch report
	pos   report // zero value: no position known in this window
	// appendMs is the Kafka append time of the newest record merged, for the
	// visibility-latency metric.
	appendMs int64
}

// report is the part of an event that history keeps.
type report struct {
	ts         int64
	positionMs uint64
	durationMs uint64
	device     string
	eventID    string
	play       bool
}

// touchNewer orders reports for updated_at: by client ts, then device, the
// same tie-break as history's apply.lua, so every aggregator and Redis pick
// the same winner.
func touchNewer(a, b *report) bool {
	if a.ts != b.ts {
		return a.ts > b.ts
	}
	return a.device > b.device
}

// posNewer orders position reports: by client ts, then larger position, then
// larger duration (apply.lua's tie-break).
func posNewer(a, b *report) bool {
	if a.ts != b.ts {
		return a.ts > b.ts
	}
	if a.positionMs != b.positionMs {
		return a.positionMs > b.positionMs
	}
	return a.durationMs > b.durationMs
}

// reportOf extracts the history-relevant part of a progress or play event.
func reportOf(e *ingest.Event) report {
	r := report{ts: e.TS, device: e.Device, eventID: e.EventID, durationMs: e.DurationMs}
	if e.Type == ingest.TypePlay {
		r.play = true
		r.durationMs = 0
	} else {
		r.positionMs = e.PositionMs
	}
	return r
}

// add merges one report into s.
func (s *state) add(r report) {
	if s.touch.ts == 0 || touchNewer(&r, &s.touch) {
		s.touch = r
	}
	if r.positionMs > 0 && (s.pos.ts == 0 || posNewer(&r, &s.pos)) {
		s.pos = r
	}
}

// merge joins o into s: the same state as if every report of both had
// been added to one.
func (s *state) merge(o *state) {
	s.add(o.touch)
	if o.pos.ts != 0 {
		s.add(o.pos)
	}
	s.appendMs = max(s.appendMs, o.appendMs)
}
