package recommend

import (
	"fmt"
	"time"
	_ "time/tzdata" // IANA zones even on hosts without /usr/share/zoneinfo

	"github.com/onair/onair/internal/refusal"
)

// Station is a smart-radio station: its clock (dayparts by weekday in its
// own time zone, holidays) and its rules. PUT /v1/admin/stations/{id}
// takes it; the "catalog" topic carries it keyed "station:<id>".
type Station struct {
	ID       uint64   `json:"id"`
	Name     string   `json:"name"`
	Timezone string   `json:"timezone"`
	Holidays []string `json:"holidays"`
	// Separation limits repeats of one album / artist; nil = DefaultSeparation.
	Separation *Separation `json:"separation,omitempty"`
	// MaxItems caps a daypart's playlist; 0 = DefaultMaxItems.
	MaxItems int       `json:"max_items,omitempty"`
	Dayparts []Daypart `json:"dayparts"`

	// set by Prepare
	loc      *time.Location
	holidays map[civil]bool
	cats     map[string]bool // categories some slot draws from
	anyCat   bool            // some slot takes any category
}

// Separation: at most Album items of one album and Artist items of one
// artist in any Window consecutive items.
type Separation struct {
	Album  int `json:"album"`
	Artist int `json:"artist"`
	Window int `json:"window"`
}

// DefaultSeparation is api.md's default rule.
var DefaultSeparation = Separation{Album: 2, Artist: 3, Window: 10}

// Defaults and limits of a station.
const (
	DefaultMaxItems = 100
	MaxMaxItems     = 500
	MaxSlotCount    = 50
	MaxDayparts     = 64
)

// Daypart is a stretch of the station's clock: on Days, from Start to End
// ("HH:MM" in the station's zone; End "24:00" is midnight; End before Start
// runs past midnight into the next day). Its Rounds are played in order,
// cycled, until the playlist covers the daypart or reaches MaxItems.
type Daypart struct {
	Name   string   `json:"name"`
	Days   []string `json:"days"`
	Start  string   `json:"start"`
	End    string   `json:"end"`
	Rounds []Round  `json:"rounds"`

	days       uint8 // bit int(time.Weekday), bit 7 = holiday
	start, end int   // minutes of the day; end > start, up to 2*1440
}

// Round is a sequence of slots.
type Round struct {
	Slots []Slot `json:"slots"`
}

// Slot types.
const (
	SlotPromo    = "promo"
	SlotPersonal = "personal"
	SlotLive     = "live"
	SlotProgram  = "program"
)

// Slot asks for Count items matching Filter. MaxPerHour > 0 caps how many
// items this slot places in one clock hour of the station's zone.
type Slot struct {
	Type       string `json:"type"`
	Filter     Filter `json:"filter"`
	Count      int    `json:"count"`
	MaxPerHour int    `json:"max_per_hour"`
}

// Filter selects items: category one of Categories (any if empty), at least
// one of Tags (any if empty), region equal to Region (any if empty).
type Filter struct {
	Categories []string `json:"categories"`
	Tags       []string `json:"tags"`
	Region     string   `json:"region"`
}

const holidayBit = 7

var dayNames = map[string]int{"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6, "holiday": holidayBit}

// Prepare validates s and fills what resolution needs (zone, minutes,
// holiday set). A station is used only once Prepare succeeded; the error
// names the field.
func (s *Station) Prepare() *refusal.Error {
	if s.Name == "" || len(s.Name) > MaxTextBytes {
		return refusal.Invalidf("name", "1..%d bytes required", MaxTextBytes)
	}
	if s.Timezone == "" || s.Timezone == "Local" {
		return refusal.Invalidf("timezone", "an IANA time zone is required, e.g. Asia/Shanghai")
	}
	loc, err := time.LoadLocation(s.Timezone)
	if err != nil {
		return refusal.Invalidf("timezone", "unknown time zone %q", s.Timezone)
	}
	s.loc = loc
	s.holidays = make(map[civil]bool, len(s.Holidays))
	for i, h := range s.Holidays {
		d, err := time.Parse(time.DateOnly, h)
		if err != nil {
			return refusal.Invalidf(fmt.Sprintf("holidays[%d]", i), "want a date YYYY-MM-DD, got %q", h)
		}
		s.holidays[civilOf(d)] = true
	}
	if sep := s.Separation; sep != nil {
		switch {
		case sep.Window < 2 || sep.Window > 100:
			return refusal.Invalidf("separation.window", "must be in 2..100, got %d", sep.Window)
		case sep.Album < 1:
			return refusal.Invalidf("separation.album", "must be >= 1, got %d", sep.Album)
		case sep.Artist < 1:
			return refusal.Invalidf("separation.artist", "must be >= 1, got %d", sep.Artist)
		}
	}
	if s.MaxItems < 0 || s.MaxItems > MaxMaxItems {
		return refusal.Invalidf("max_items", "must be in 0..%d (0 = %d), got %d", MaxMaxItems, DefaultMaxItems, s.MaxItems)
	}
	if len(s.Dayparts) == 0 || len(s.Dayparts) > MaxDayparts {
		return refusal.Invalidf("dayparts", "1..%d dayparts required", MaxDayparts)
	}
	for i := range s.Dayparts {
		if err := s.Dayparts[i].prepare(fmt.Sprintf("dayparts[%d].", i)); err != nil {
			return err
		}
	}
	if err := s.checkOverlaps(); err != nil {
		return err
	}
	s.cats, s.anyCat = s.categories()
	return nil
}

func (d *Daypart) prepare(p string) *refusal.Error {
	if d.Name == "" || len(d.Name) > MaxTextBytes {
		return refusal.Invalidf(p+"name", "1..%d bytes required", MaxTextBytes)
	}
	if len(d.Days) == 0 {
		return refusal.Invalidf(p+"days", "at least one of mon..sun or holiday")
	}
	d.days = 0
	for j, name := range d.Days {
		bit, ok := dayNames[name]
		if !ok {
			return refusal.Invalidf(fmt.Sprintf("%sdays[%d]", p, j), "want mon..sun or holiday, got %q", name)
		}
		d.days |= 1 << bit
	}
	var err *refusal.Error
	if d.start, err = parseClock(p+"start", d.Start, false); err != nil {
		return err
	}
	if d.end, err = parseClock(p+"end", d.End, true); err != nil {
		return err
	}
	if d.end == d.start {
		return refusal.Invalidf(p+"end", "must differ from start (00:00-24:00 is a whole day)")
	}
	if d.end < d.start {
		d.end += 1440 // runs past midnight
	}
	if len(d.Rounds) == 0 {
		return refusal.Invalidf(p+"rounds", "at least one round of slots is required")
	}
	for r, round := range d.Rounds {
		rp := fmt.Sprintf("%srounds[%d].", p, r)
		if len(round.Slots) == 0 {
			return refusal.Invalidf(rp+"slots", "a round needs at least one slot")
		}
		for k, sl := range round.Slots {
			if err := sl.validate(fmt.Sprintf("%sslots[%d].", rp, k)); err != nil {
				return err
			}
		}
	}
	return nil
}

func (sl *Slot) validate(p string) *refusal.Error {
	switch sl.Type {
	case SlotPromo, SlotPersonal, SlotLive, SlotProgram:
	default:
		return refusal.Invalidf(p+"type", "unknown slot type %q (want promo, personal, live or program)", sl.Type)
	}
	if sl.Count < 1 || sl.Count > MaxSlotCount {
		return refusal.Invalidf(p+"count", "must be in 1..%d, got %d", MaxSlotCount, sl.Count)
	}
	if sl.MaxPerHour < 0 {
		return refusal.Invalidf(p+"max_per_hour", "must be >= 0 (0 = no cap), got %d", sl.MaxPerHour)
	}
	if len(sl.Filter.Tags) > MaxTags {
		return refusal.Invalidf(p+"filter.tags", "at most %d tags", MaxTags)
	}
	return nil
}

// parseClock parses "HH:MM" into minutes; "24:00" only where allowEnd.
func parseClock(field, s string, allowEnd bool) (int, *refusal.Error) {
	var h, m int
	if len(s) != 5 || s[2] != ':' || !digits(s[:2]) || !digits(s[3:]) {
		return 0, refusal.Invalidf(field, "want HH:MM, got %q", s)
	}
	h, m = int(s[0]-'0')*10+int(s[1]-'0'), int(s[3]-'0')*10+int(s[4]-'0')
	if m > 59 || h > 24 || (h == 24 && (m != 0 || !allowEnd)) {
		return 0, refusal.Invalidf(field, "%q is not a time of day (00:00..23:59%s)", s, map[bool]string{true: ", or 24:00 as an end"}[allowEnd])
	}
	return h*60 + m, nil
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// checkOverlaps refuses two dayparts that share a minute of the week (or
// of a holiday, which has its own clock). A daypart running past midnight
// occupies the next day's first minutes.
func (s *Station) checkOverlaps() *refusal.Error {
	type span struct{ from, to, dp int }
	const week = 7 * 1440
	var weekSpans, holSpans []span
	for i, d := range s.Dayparts {
		for wd := 0; wd < 7; wd++ {
			if d.days&(1<<wd) == 0 {
				continue
			}
			from := (wd+6)%7*1440 + d.start // Monday = 0
			to := from + d.end - d.start
			weekSpans = append(weekSpans, span{from, to, i})
			if to > week { // Sunday night into Monday
				weekSpans = append(weekSpans, span{from - week, to - week, i})
			}
		}
		if d.days&(1<<holidayBit) != 0 {
			holSpans = append(holSpans, span{d.start, d.end, i})
		}
	}
	for _, spans := range [][]span{weekSpans, holSpans} {
		for a := range spans {
			for b := a + 1; b < len(spans); b++ {
				x, y := spans[a], spans[b]
				if x.dp != y.dp && x.from < y.to && y.from < x.to {
					i, j := min(x.dp, y.dp), max(x.dp, y.dp)
					return refusal.Invalidf(fmt.Sprintf("dayparts[%d]", j), "overlaps dayparts[%d] (%q and %q share time)", i, s.Dayparts[i].Name, s.Dayparts[j].Name)
				}
			}
		}
	}
	return nil
}

// Location returns the station's zone (after Prepare).
func (s *Station) Location() *time.Location { return s.loc }

func (s *Station) separation() Separation {
	if s.Separation != nil {
		return *s.Separation
	}
	return DefaultSeparation
}

func (s *Station) maxItems() int {
	if s.MaxItems > 0 {
		return s.MaxItems
	}
	return DefaultMaxItems
}

// categories lists every category a slot of s may draw from; nil means
// some slot takes any category. A catalog change outside them cannot
// change s's playlists.
func (s *Station) categories() (cats map[string]bool, any bool) {
	cats = map[string]bool{}
	for _, d := range s.Dayparts {
		for _, r := range d.Rounds {
			for _, sl := range r.Slots {
				if len(sl.Filter.Categories) == 0 {
					return nil, true
				}
				for _, c := range sl.Filter.Categories {
					cats[c] = true
				}
			}
		}
	}
	return cats, false
}

// mayUse reports whether a version of it could appear in s's playlists.
func (s *Station) mayUse(it *Item) bool {
	return s.anyCat || s.cats[it.Category]
}

// civil is a calendar date without a zone.
type civil struct {
	y int
	m time.Month
	d int
}

func civilOf(t time.Time) civil { y, m, d := t.Date(); return civil{y, m, d} }

func (c civil) add(days int) civil {
	return civilOf(time.Date(c.y, c.m, c.d+days, 12, 0, 0, 0, time.UTC))
}

func (c civil) weekday() time.Weekday {
	return time.Date(c.y, c.m, c.d, 12, 0, 0, 0, time.UTC).Weekday()
}
