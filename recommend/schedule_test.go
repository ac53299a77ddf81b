package recommend

import (
	"encoding/json"
	"testing"
	"time"
)

func slots1() []Round {
	return []Round{{Slots: []Slot{{Type: SlotProgram, Count: 1}}}}
}

func dp(name string, days []string, start, end string) Daypart {
	return Daypart{Name: name, Days: days, Start: start, End: end, Rounds: slots1()}
}

var weekdays = []string{"mon", "tue", "wed", "thu", "fri"}
var everyDay = []string{"mon", "tue", "wed", "thu", "fri", "sat", "sun"}

func prepared(t *testing.T, s Station) *Station {
	t.Helper()
	if err := s.Prepare(); err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	return &s
}

func TestWindowAt(t *testing.T) {
	t.Parallel()
	shanghai := prepared(t, Station{ID: 1, Name: "sh", Timezone: "Asia/Shanghai", Holidays: []string{"2026-10-01"},
		Dayparts: []Daypart{
			dp("morning", weekdays, "06:00", "10:00"),
			dp("day", weekdays, "10:00", "22:00"),
			dp("weekend", []string{"sat", "sun"}, "06:00", "22:00"),
			dp("night", everyDay, "22:00", "06:00"),
			dp("holiday", []string{"holiday"}, "00:00", "24:00"),
		}})
	// Berlin: 2026-03-29 02:00 CET → 03:00 CEST; 2026-10-25 03:00 CEST → 02:00 CET.
	berlin := prepared(t, Station{ID: 2, Name: "be", Timezone: "Europe/Berlin",
		Dayparts: []Daypart{dp("early", everyDay, "00:00", "02:30"), dp("late", everyDay, "02:30", "24:00")}})
	skipped := prepared(t, Station{ID: 3, Name: "sk", Timezone: "Europe/Berlin",
		Dayparts: []Daypart{dp("gap", everyDay, "02:00", "02:30"), dp("rest", everyDay, "02:30", "02:00")}})
	ny := prepared(t, Station{ID: 4, Name: "ny", Timezone: "America/New_York",
		Dayparts: []Daypart{dp("am", everyDay, "01:30", "12:00"), dp("pm", everyDay, "12:00", "01:30")}})

	f := func(st *Station, at, wantName, wantStart, wantEnd string) {
		t.Helper()
		w, ok := st.WindowAt(mustTime(t, at))
		if wantName == "" {
			if ok {
				t.Errorf("%s at %s: got %s [%s, %s), want no daypart", st.Name, at, w.Name, w.Start, w.End)
			}
			return
		}
		if !ok {
			t.Errorf("%s at %s: no daypart, want %s", st.Name, at, wantName)
			return
		}
		if w.Name != wantName || !w.Start.Equal(mustTime(t, wantStart)) || !w.End.Equal(mustTime(t, wantEnd)) {
			t.Errorf("%s at %s: got %s [%s, %s), want %s [%s, %s)", st.Name, at, w.Name,
				w.Start.UTC().Format(time.RFC3339), w.End.UTC().Format(time.RFC3339), wantName, wantStart, wantEnd)
		}
	}
	// weekday, first and last instant
	f(shanghai, "2026-11-23T06:00:00+08:00", "morning", "2026-11-23T06:00:00+08:00", "2026-11-23T10:00:00+08:00")
	f(shanghai, "2026-11-23T09:59:59+08:00", "morning", "2026-11-23T06:00:00+08:00", "2026-11-23T10:00:00+08:00")
	f(shanghai, "2026-11-23T10:00:00+08:00", "day", "2026-11-23T10:00:00+08:00", "2026-11-23T22:00:00+08:00")
	// across midnight: the night belongs to the day it starts on
	f(shanghai, "2026-11-23T23:30:00+08:00", "night", "2026-11-23T22:00:00+08:00", "2026-11-24T06:00:00+08:00")
	f(shanghai, "2026-11-24T00:00:00+08:00", "night", "2026-11-23T22:00:00+08:00", "2026-11-24T06:00:00+08:00")
	f(shanghai, "2026-11-24T05:59:00+08:00", "night", "2026-11-23T22:00:00+08:00", "2026-11-24T06:00:00+08:00")
	// weekday → weekend boundary (Friday night into Saturday)
	f(shanghai, "2026-11-28T05:59:59+08:00", "night", "2026-11-27T22:00:00+08:00", "2026-11-28T06:00:00+08:00")
	f(shanghai, "2026-11-28T06:00:00+08:00", "weekend", "2026-11-28T06:00:00+08:00", "2026-11-28T22:00:00+08:00")
	// the same instant in UTC resolves in the station's zone
	f(shanghai, "2026-11-27T22:00:00Z", "weekend", "2026-11-28T06:00:00+08:00", "2026-11-28T22:00:00+08:00")
	// holiday: the whole date switches; the eve's night is cut at midnight
	f(shanghai, "2026-09-30T23:00:00+08:00", "night", "2026-09-30T22:00:00+08:00", "2026-10-01T00:00:00+08:00")
	f(shanghai, "2026-10-01T00:00:00+08:00", "holiday", "2026-10-01T00:00:00+08:00", "2026-10-02T00:00:00+08:00")
	f(shanghai, "2026-10-01T08:00:00+08:00", "holiday", "2026-10-01T00:00:00+08:00", "2026-10-02T00:00:00+08:00")
	// no night starts on the holiday, so the next morning has a gap until 06:00
	f(shanghai, "2026-10-02T01:00:00+08:00", "", "", "")
	f(shanghai, "2026-10-02T06:00:00+08:00", "morning", "2026-10-02T06:00:00+08:00", "2026-10-02T10:00:00+08:00")

	// DST spring forward: 02:30 does not exist on 2026-03-29 → the jump (03:00 CEST = 01:00Z)
	f(berlin, "2026-03-29T00:59:00Z", "early", "2026-03-28T23:00:00Z", "2026-03-29T01:00:00Z")
	f(berlin, "2026-03-29T01:00:00Z", "late", "2026-03-29T01:00:00Z", "2026-03-29T22:00:00Z")
	// DST fall back: 02:30 occurs twice on 2026-10-25 → the first (CEST, 00:30Z)
	f(berlin, "2026-10-25T00:29:00Z", "early", "2026-10-24T22:00:00Z", "2026-10-25T00:30:00Z")
	f(berlin, "2026-10-25T00:30:00Z", "late", "2026-10-25T00:30:00Z", "2026-10-25T23:00:00Z")
	f(berlin, "2026-10-25T01:30:00Z", "late", "2026-10-25T00:30:00Z", "2026-10-25T23:00:00Z") // 02:30 CET, second pass
	// a daypart wholly inside the skipped hour does not occur that day
	f(skipped, "2026-03-29T01:00:00Z", "rest", "2026-03-29T01:00:00Z", "2026-03-30T00:00:00Z")
	f(skipped, "2026-03-29T00:30:00Z", "rest", "2026-03-28T01:30:00Z", "2026-03-29T01:00:00Z")
	f(skipped, "2026-03-30T00:10:00Z", "gap", "2026-03-30T00:00:00Z", "2026-03-30T00:30:00Z")
	// New York, 2026-03-08 02:00 → 03:00 EDT; 2026-11-01 02:00 EDT → 01:00 EST: 01:30 twice
	f(ny, "2026-11-01T05:29:00Z", "pm", "2026-10-31T16:00:00Z", "2026-11-01T05:30:00Z")
	f(ny, "2026-11-01T05:30:00Z", "am", "2026-11-01T05:30:00Z", "2026-11-01T17:00:00Z") // first 01:30 (EDT)
	f(ny, "2026-11-01T06:30:00Z", "am", "2026-11-01T05:30:00Z", "2026-11-01T17:00:00Z") // second 01:30 (EST)
	f(ny, "2026-03-08T06:30:00Z", "am", "2026-03-08T06:30:00Z", "2026-03-08T16:00:00Z")
}

func TestNextWindow(t *testing.T) {
	t.Parallel()
	st := prepared(t, Station{ID: 1, Name: "x", Timezone: "Asia/Tokyo",
		Dayparts: []Daypart{dp("a", []string{"mon"}, "08:00", "09:00"), dp("b", []string{"wed"}, "23:00", "01:00")}})
	f := func(after, wantName, wantStart string) {
		t.Helper()
		w, ok := st.NextWindow(mustTime(t, after))
		if !ok || w.Name != wantName || !w.Start.Equal(mustTime(t, wantStart)) {
			t.Errorf("NextWindow(%s) = %v %s %s, want %s %s", after, ok, w.Name, w.Start, wantName, wantStart)
		}
	}
	f("2026-11-23T08:00:00+09:00", "a", "2026-11-23T08:00:00+09:00") // at the start: itself
	f("2026-11-23T08:00:01+09:00", "b", "2026-11-25T23:00:00+09:00")
	f("2026-11-26T00:30:00+09:00", "a", "2026-11-30T08:00:00+09:00")
}

func TestStationValidation(t *testing.T) {
	t.Parallel()
	f := func(mutate func(s *Station), wantField string) {
		t.Helper()
		s := Station{ID: 1, Name: "ok", Timezone: "Asia/Shanghai", Dayparts: []Daypart{
			dp("a", weekdays, "06:00", "10:00"), dp("b", everyDay, "22:00", "02:00")}}
		mutate(&s)
		err := s.Prepare()
		switch {
		case wantField == "" && err != nil:
			t.Errorf("unexpected error %v", err)
		case wantField != "" && (err == nil || err.Field != wantField):
			t.Errorf("got %v, want an error on %s", err, wantField)
		}
	}
	f(func(*Station) {}, "")
	f(func(s *Station) { s.Dayparts[1].Start = "09:00" }, "dayparts[1]")                                               // overlap
	f(func(s *Station) { s.Dayparts = append(s.Dayparts, dp("c", []string{"tue"}, "01:00", "05:00")) }, "dayparts[2]") // Monday's night runs to 02:00
	f(func(s *Station) { s.Dayparts = append(s.Dayparts, dp("c", []string{"mon"}, "01:00", "05:00")) }, "dayparts[2]") // Sunday's night wraps into Monday
	f(func(s *Station) { s.Dayparts[0].Rounds[0].Slots[0].Type = "jingle" }, "dayparts[0].rounds[0].slots[0].type")
	f(func(s *Station) { s.Dayparts[0].Start = "25:00" }, "dayparts[0].start")
	f(func(s *Station) { s.Dayparts[0].End = "10:60" }, "dayparts[0].end")
	f(func(s *Station) { s.Dayparts[0].Start = "24:00" }, "dayparts[0].start")
	f(func(s *Station) { s.Dayparts[1].End = "24:00" }, "")
	f(func(s *Station) { s.Timezone = "Mars/Olympus" }, "timezone")
	f(func(s *Station) { s.Timezone = "" }, "timezone")
	f(func(s *Station) { s.Dayparts[0].Rounds = nil }, "dayparts[0].rounds")
	f(func(s *Station) { s.Dayparts[0].Rounds = []Round{{}} }, "dayparts[0].rounds[0].slots")
	f(func(s *Station) { s.Dayparts[0].Days = []string{"funday"} }, "dayparts[0].days[0]")
	f(func(s *Station) { s.Dayparts[0].Rounds[0].Slots[0].Count = 0 }, "dayparts[0].rounds[0].slots[0].count")
	f(func(s *Station) { s.Holidays = []string{"2026-13-01"} }, "holidays[0]")
	f(func(s *Station) { s.Separation = &Separation{Album: 1, Artist: 1, Window: 1} }, "separation.window")
	f(func(s *Station) { s.Dayparts = nil }, "dayparts")
	// holiday dayparts have their own clock: no overlap with weekdays
	f(func(s *Station) { s.Dayparts = append(s.Dayparts, dp("h", []string{"holiday"}, "00:00", "24:00")) }, "")
}

func TestDemoStationsCoverEveryMinute(t *testing.T) {
	t.Parallel()
	items := map[uint64]*Item{}
	for _, it := range DemoCatalog() {
		items[it.ItemID] = &it
	}
	snap := NewSnapshot(1, items)
	for _, s := range DemoStations() {
		b, _ := json.Marshal(s) // as the seed sends it
		var st Station
		if err := json.Unmarshal(b, &st); err != nil {
			t.Fatal(err)
		}
		p := prepared(t, st)
		start := mustTime(t, "2026-12-28T00:00:00Z") // a week, and a holiday (2027-01-01)
		for at := start; at.Before(start.Add(8 * 24 * time.Hour)); at = at.Add(7 * time.Minute) {
			w, ok := p.WindowAt(at)
			if !ok {
				t.Fatalf("station %d has no daypart at %s", p.ID, at)
			}
			if at.Minute() < 7 && len(Build(snap, p, w).Entries) == 0 {
				t.Fatalf("station %d has an empty %s playlist at %s", p.ID, w.Name, at)
			}
		}
	}
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
