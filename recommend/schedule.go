package recommend

import (
	"slices"
	"time"
)

// Window is one occurrence of a daypart: the instants [Start, End).
type Window struct {
	// Daypart indexes Station.Dayparts.
	Daypart int
	Name    string
	Start   time.Time
	End     time.Time
	// Holiday: the occurrence belongs to a holiday date.
	Holiday bool
}

// IsZero reports an empty window (no daypart).
func (w Window) IsZero() bool { return w.Start.IsZero() }

// Resolution rules (docs/api.md, "Smart radio"):
//   - A date that is one of the station's holidays uses only the dayparts
//     whose days include "holiday"; any other date uses those of its
//     weekday. A daypart belongs to the date it starts on, also when it
//     runs past midnight.
//   - Where a daypart running past midnight meets one of the next date's
//     own dayparts, the next date's wins: the earlier one ends where the
//     later one starts.
//   - Wall times map to instants in the station's zone. A wall time that
//     the clock skips (spring forward) maps to the instant the clock jumps
//     (02:30 on a day that goes 02:00 → 03:00 becomes 03:00); a wall time
//     that occurs twice (fall back) maps to its first occurrence. So a
//     daypart starting in a skipped hour starts at the jump, a daypart
//     ending in a repeated hour ends at its first pass, and a daypart whose
//     start and end both fall in the skipped hour does not occur that day.

// WindowAt returns the daypart occurrence that holds at, or false when the
// station's clock has nothing then.
func (s *Station) WindowAt(at time.Time) (Window, bool) {
	for _, w := range s.windowsAround(civilOf(at.In(s.loc))) {
		if !at.Before(w.Start) && at.Before(w.End) {
			return w, true
		}
	}
	return Window{}, false
}

// NextWindow returns the first daypart occurrence that starts at or after
// t, looking up to 8 days ahead.
func (s *Station) NextWindow(t time.Time) (Window, bool) {
	day := civilOf(t.In(s.loc))
	for i := 0; i <= 8; i++ {
		for _, w := range s.windowsAround(day.add(i)) {
			if !w.Start.Before(t) {
				return w, true
			}
		}
	}
	return Window{}, false
}

// windowsAround lists, by start, the occurrences starting on day-1 and day
// with the precedence rule applied (each clipped by the next day's).
func (s *Station) windowsAround(day civil) []Window {
	prev, cur, next := s.occurrences(day.add(-1)), s.occurrences(day), s.occurrences(day.add(1))
	clip(prev, cur)
	clip(cur, next)
	out := make([]Window, 0, len(prev)+len(cur))
	for _, w := range append(prev, cur...) {
		if w.Start.Before(w.End) {
			out = append(out, w)
		}
	}
	return out
}

// clip ends each of earlier's windows at the first start of later's that
// falls inside it.
func clip(earlier, later []Window) {
	for i := range earlier {
		for _, l := range later {
			if l.Start.After(earlier[i].Start) && l.Start.Before(earlier[i].End) {
				earlier[i].End = l.Start
			}
		}
	}
}

// occurrences lists the windows of the dayparts that start on day.
func (s *Station) occurrences(day civil) []Window {
	holiday := s.holidays[day]
	bit := uint8(1) << int(day.weekday())
	if holiday {
		bit = 1 << holidayBit
	}
	var out []Window
	for i := range s.Dayparts {
		d := &s.Dayparts[i]
		if d.days&bit == 0 {
			continue
		}
		out = append(out, Window{Daypart: i, Name: d.Name, Holiday: holiday,
			Start: wallInstant(day, d.start, s.loc), End: wallInstant(day, d.end, s.loc)})
	}
	slices.SortFunc(out, func(a, b Window) int { return a.Start.Compare(b.Start) })
	return out
}

// wallInstant is the instant the station's clock shows minute (may pass
// 1440: the next days) of day, with the skipped/repeated rule above.
func wallInstant(day civil, minute int, loc *time.Location) time.Time {
	naive := time.Date(day.y, day.m, day.d, 0, minute, 0, 0, time.UTC)
	var best time.Time
	// The offsets in force a day either side cover any transition at naive.
	for _, probe := range []time.Time{naive.Add(-26 * time.Hour), naive.Add(26 * time.Hour)} {
		_, off := probe.In(loc).Zone()
		c := naive.Add(-time.Duration(off) * time.Second)
		if sameWall(c.In(loc), naive) && (best.IsZero() || c.Before(best)) {
			best = c
		}
	}
	if !best.IsZero() {
		return best
	}
	// Skipped: the instant the clock jumped over naive.
	_, off := naive.Add(-26 * time.Hour).In(loc).Zone()
	after := naive.Add(-time.Duration(off) * time.Second)
	start, _ := after.In(loc).ZoneBounds()
	return start
}

func sameWall(t, naive time.Time) bool {
	y, m, d := t.Date()
	ny, nm, nd := naive.Date()
	return y == ny && m == nm && d == nd && t.Hour() == naive.Hour() && t.Minute() == naive.Minute()
}
