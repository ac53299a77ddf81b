package recommend

import (
	"fmt"
	"strings"
	"time"
)

// Entry is one place in a playlist.
type Entry struct {
	ItemID uint64 `json:"item_id"`
	// Slot is the slot type that placed it.
	Slot string `json:"slot"`
	// Reason says why this item: the filter term it matched, its affinity,
	// or what was relaxed to take it.
	Reason string `json:"reason"`
	// At is the estimated start (Unix ms): the window's start plus the
	// durations before it.
	At int64 `json:"at"`
	// ref indexes Playlist.pools for personal slots, else -1.
	ref int
}

// Relaxed is a rule that gave way while a playlist was built, and why.
type Relaxed struct {
	Rule   string `json:"rule"`
	Slot   string `json:"slot"`
	Reason string `json:"reason"`
}

// Playlist is a station's public playlist for one daypart occurrence.
type Playlist struct {
	StationID uint64
	Window    Window
	Entries   []Entry
	Relaxed   []Relaxed
	// Snapshot is the catalog version it was built from.
	Snapshot uint64
	// pools[i] are the ranked candidates of personal slot reference i, from
	// which Personalize refills that slot's entries per listener.
	pools [][]*Item
}

// DefaultDurationMs is assumed for items without a duration.
const DefaultDurationMs = 180_000

// poolSize is how many candidates a personal slot keeps for refills.
const poolSize = 32

// Build makes the public playlist of st for window w from snap. It is a
// pure function: the same inputs give the same playlist.
//
// Rounds are taken in order, cycled, each slot placing up to Count items,
// until the estimated time reaches w.End, the list reaches st's MaxItems,
// or a whole cycle places nothing. A slot takes the best-ranked candidate
// of its filter that is playable at its estimated start (online, past
// online_at, inside its flight dates), not placed before, within the
// slot's max_per_hour for that clock hour, and within the separation rule.
// Hard rules (no repeat, playable, separation, max_per_hour) never give
// way; when nothing passes them, the filter widens (region, then tags are
// dropped), and failing that the slot stays short. Each such step is
// recorded in Relaxed.
func Build(snap *Snapshot, st *Station, w Window) *Playlist {
	b := builder{snap: snap, st: st, sep: st.separation(), used: map[uint64]bool{},
		perHour: map[hourKey]int{}, relaxedSeen: map[string]bool{}}
	pl := &Playlist{StationID: st.ID, Window: w, Snapshot: snap.Version}
	b.pl = pl
	dp := &st.Dayparts[w.Daypart]
	t, end, maxItems := w.Start.UnixMilli(), w.End.UnixMilli(), st.maxItems()
	refs := map[[2]int]int{}
	for len(pl.Entries) < maxItems && t < end {
		placed := 0
		for ri, round := range dp.Rounds {
			for si := range round.Slots {
				sl := &round.Slots[si]
				name := fmt.Sprintf("rounds[%d].slots[%d] (%s)", ri, si, sl.Type)
				ref := -1
				if sl.Type == SlotPersonal {
					r, ok := refs[[2]int{ri, si}]
					if !ok {
						r = len(pl.pools)
						refs[[2]int{ri, si}] = r
						pl.pools = append(pl.pools, b.pool(sl, t))
					}
					ref = r
				}
				for k := 0; k < sl.Count && len(pl.Entries) < maxItems && t < end; k++ {
					it, reason := b.pick(sl, name, ri, si, t)
					if it == nil {
						break
					}
					b.place(it)
					pl.Entries = append(pl.Entries, Entry{ItemID: it.ItemID, Slot: sl.Type, Reason: reason, At: t, ref: ref})
					t += durationOf(it)
					placed++
				}
			}
		}
		if placed == 0 {
			break
		}
	}
	return pl
}

func durationOf(it *Item) int64 {
	if it.DurationMs > 0 {
		return it.DurationMs
	}
	return DefaultDurationMs
}

type hourKey struct {
	ri, si int
	hour   int64 // local clock hour, as Unix seconds of its wall time
}

type builder struct {
	snap        *Snapshot
	st          *Station
	sep         Separation
	pl          *Playlist
	used        map[uint64]bool
	recent      []*Item // the last sep.Window-1 placed items
	perHour     map[hourKey]int
	relaxedSeen map[string]bool
}

func (b *builder) place(it *Item) {
	b.used[it.ItemID] = true
	b.recent = append(b.recent, it)
	if n := b.sep.Window - 1; len(b.recent) > n {
		b.recent = b.recent[len(b.recent)-n:]
	}
}

// separated reports whether placing it next keeps the separation rule.
func separated(recent []*Item, it *Item, sep Separation) bool {
	album, artist := 1, 1
	for _, r := range recent {
		if r.AlbumID == it.AlbumID {
			album++
		}
		if it.ArtistID != 0 && r.ArtistID == it.ArtistID {
			artist++
		}
	}
	return album <= sep.Album && (it.ArtistID == 0 || artist <= sep.Artist)
}

// pick chooses the slot's next item at estimated time t, widening the
// filter step by step when the strict one has nothing left.
func (b *builder) pick(sl *Slot, name string, ri, si int, t int64) (*Item, string) {
	hk := hourKey{ri, si, localHour(t, b.st.loc)}
	if sl.MaxPerHour > 0 && b.perHour[hk] >= sl.MaxPerHour {
		b.relax("count", name, fmt.Sprintf("max_per_hour %d reached in the hour of %s", sl.MaxPerHour, time.UnixMilli(t).In(b.st.loc).Format("15:04")))
		return nil, ""
	}
	f := sl.Filter
	for _, step := range widenings(f) {
		it := b.first(step.f, sl.Type == SlotLive, t)
		if it == nil {
			continue
		}
		b.perHour[hk]++
		reason := reasonFor(it, step.f, sl.Type)
		if step.rule != "" {
			b.relax(step.rule, name, fmt.Sprintf("no playable item left matching %s; took one matching %s", describe(f), describe(step.f)))
			reason = "relaxed " + step.rule + "; " + reason
		}
		return it, reason
	}
	b.relax("count", name, fmt.Sprintf("slot short: no playable item matching %s that is not already placed and keeps separation (album %d, artist %d per %d)", describe(f), b.sep.Album, b.sep.Artist, b.sep.Window))
	return nil, ""
}

// widening is one step of the filter's relaxation ladder; rule "" is the
// filter as given.
type widening struct {
	rule string
	f    Filter
}

func widenings(f Filter) []widening {
	steps := []widening{{"", f}}
	if f.Region != "" {
		steps = append(steps, widening{"filter.region", Filter{Categories: f.Categories, Tags: f.Tags}})
	}
	if len(f.Tags) > 0 {
		rule := "filter.tags"
		if f.Region != "" {
			rule = "filter.region,filter.tags"
		}
		steps = append(steps, widening{rule, Filter{Categories: f.Categories}})
	}
	return steps
}

// first is the best-ranked candidate passing the hard rules at t.
func (b *builder) first(f Filter, live bool, t int64) *Item {
	var found *Item
	b.snap.candidates(f, live).each(func(it *Item) bool {
		if !b.used[it.ItemID] && it.playable(t) && separated(b.recent, it, b.sep) {
			found = it
		}
		return found != nil
	})
	return found
}

// pool is a personal slot's refill candidates: its filter's best items
// playable at t.
func (b *builder) pool(sl *Slot, t int64) []*Item {
	var out []*Item
	b.snap.candidates(sl.Filter, false).each(func(it *Item) bool {
		if it.playable(t) {
			out = append(out, it)
		}
		return len(out) == poolSize
	})
	return out
}

func (b *builder) relax(rule, slot, reason string) {
	key := rule + "|" + slot
	if b.relaxedSeen[key] {
		return
	}
	b.relaxedSeen[key] = true
	b.pl.Relaxed = append(b.pl.Relaxed, Relaxed{Rule: rule, Slot: slot, Reason: reason})
}

func localHour(t int64, loc *time.Location) int64 {
	lt := time.UnixMilli(t).In(loc)
	y, m, d := lt.Date()
	return time.Date(y, m, d, lt.Hour(), 0, 0, 0, time.UTC).Unix()
}

// reasonFor names the filter term that made the item eligible.
func reasonFor(it *Item, f Filter, slot string) string {
	prefix := ""
	if slot == SlotPromo {
		prefix = "promo "
	}
	for _, t := range f.Tags {
		if it.hasTag(t) {
			return prefix + "tag:" + t
		}
	}
	if len(f.Categories) > 0 {
		return prefix + "category:" + it.Category
	}
	if f.Region != "" {
		return prefix + "region:" + it.Region
	}
	return prefix + fmt.Sprintf("top score %.4g", it.Score)
}

func describe(f Filter) string {
	var parts []string
	if len(f.Categories) > 0 {
		parts = append(parts, "categories "+strings.Join(f.Categories, ","))
	}
	if len(f.Tags) > 0 {
		parts = append(parts, "tags "+strings.Join(f.Tags, ","))
	}
	if f.Region != "" {
		parts = append(parts, "region "+f.Region)
	}
	if len(parts) == 0 {
		return "any item"
	}
	return strings.Join(parts, ", ")
}
