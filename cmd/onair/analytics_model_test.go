package main

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/onair/onair/ingest"
	"github.com/onair/onair/seed"
)

// docModel holds the generated events and answers docs/analytics.md's
// questions from them directly, the way an analyst would by hand.
type docModel struct {
	evs   []ingest.Event
	loc   *time.Location
	today time.Time // midnight, in loc
	lww   map[lwwKey]lwwPos
}

const docUser, docRoom = 7, 1

func newDocModel(gen seed.GenConfig, loc *time.Location) *docModel {
	m := &docModel{loc: loc, lww: map[lwwKey]lwwPos{}}
	seed.Generate(gen, func(e *ingest.Event) bool { m.evs = append(m.evs, *e); return true })
	now := time.Now().In(loc)
	m.today = time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, loc)
	for _, e := range m.evs {
		if e.Type == ingest.TypeProgress && e.PositionMs > 0 {
			k, r := lwwKey{e.UserID, e.Biz, e.ItemID}, lwwPos{e.TS, e.PositionMs, e.DurationMs}
			if cur, ok := m.lww[k]; !ok || r.newer(cur) {
				m.lww[k] = r
			}
		}
	}
	return m
}

// ago is how many days before today e happened (0 = today).
func (m *docModel) ago(e *ingest.Event) int {
	t := time.UnixMilli(e.TS).In(m.loc)
	d := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, m.loc)
	return int(m.today.Sub(d).Hours()/24 + 0.5)
}

func (m *docModel) day(ago int) string { return m.today.AddDate(0, 0, -ago).Format(time.DateOnly) }

func (m *docModel) where(f func(e *ingest.Event) bool) []*ingest.Event {
	var out []*ingest.Event
	for i := range m.evs {
		if f(&m.evs[i]) {
			out = append(out, &m.evs[i])
		}
	}
	return out
}

// rollupType: the types item_plays_* and user_item_daily see.
func rollupType(e *ingest.Event) bool {
	return e.Type == ingest.TypeProgress || e.Type == ingest.TypePlay || e.Type == ingest.TypeSkip || e.Type == ingest.TypeLike
}

// counts are sums over a group of events.
type counts struct{ plays, listened, likes, skips, n uint64 }

func (c *counts) add(e *ingest.Event) {
	c.n++
	switch e.Type {
	case ingest.TypePlay:
		c.plays++
		c.listened += e.ListenedMs
	case ingest.TypeLike:
		c.likes++
	case ingest.TypeSkip:
		c.skips++
	}
}

func group[K comparable](evs []*ingest.Event, key func(*ingest.Event) K) map[K]*counts {
	out := map[K]*counts{}
	for _, e := range evs {
		k := key(e)
		if out[k] == nil {
			out[k] = &counts{}
		}
		out[k].add(e)
	}
	return out
}

func distinctUsers(evs []*ingest.Event) uint64 {
	seen := map[uint64]bool{}
	for _, e := range evs {
		seen[e.UserID] = true
	}
	return uint64(len(seen))
}

// expectations returns each documented query's rows, by marker name.
func (m *docModel) expectations() map[string][][]string {
	out := map[string][][]string{}
	out["top-items-per-hour"] = m.topItemsPerHour()
	out["listening-per-day-and-biz"] = m.listeningPerDay()
	out["completion-rate-per-item"], out["play-finish-funnel"] = m.completion()
	out["dau-per-biz"] = m.activePerBiz(1, 1)
	out["wau-per-biz"] = m.activePerBiz(1, 7)
	for ago := 3; ago >= 1; ago-- {
		out["dau-all"] = append(out["dau-all"], []string{m.day(ago), utoa(distinctUsers(m.where(func(e *ingest.Event) bool { return m.ago(e) == ago })))})
		out["first-play-today"] = append(out["first-play-today"], []string{m.day(ago), utoa(distinctUsers(m.where(func(e *ingest.Event) bool {
			return m.ago(e) == ago && (e.Type == ingest.TypePlay || e.Type == ingest.TypeProgress)
		})))})
		late := m.where(func(e *ingest.Event) bool { return m.ago(e) == ago })
		out["late-event-lag"] = append(out["late-event-lag"], []string{m.day(ago), utoa(uint64(len(late))), "*"})
	}
	out["retention"] = m.retention()
	out["station-skip-rate"] = m.stations()
	out["user-tag-affinity"], out["user-category-affinity"], out["affinity-read-time-join"] = m.affinity()
	out["user-item-affinity"] = m.userItems()
	out["room-gift-totals"], out["gift-ranking-in-room"] = m.gifts()
	out["pk-outcome"] = m.pk()
	out["session-length"] = m.sessions()
	out["top-listeners"] = m.topListeners()
	yPlays := uint64(len(m.where(func(e *ingest.Event) bool { return m.ago(e) == 1 && e.Type == ingest.TypePlay })))
	yUsers := distinctUsers(m.where(func(e *ingest.Event) bool { return m.ago(e) == 1 }))
	out["rollup-check"] = [][]string{{utoa(yPlays), utoa(yPlays), utoa(yUsers), utoa(yUsers)}}
	return out
}

func (m *docModel) topItemsPerHour() [][]string {
	y := m.today.AddDate(0, 0, -1)
	from, to := y.Add(18*time.Hour).UnixMilli(), y.Add(22*time.Hour).UnixMilli()
	type hk struct {
		hour int64
		item uint64
	}
	g := group(m.where(func(e *ingest.Event) bool {
		return e.Biz == ingest.BizAudio && rollupType(e) && e.TS >= from && e.TS < to
	}), func(e *ingest.Event) hk { return hk{e.TS / 3_600_000 * 3_600_000, e.ItemID} })
	keys := slices.SortedFunc(maps.Keys(g), func(a, b hk) int {
		return cmp.Or(cmp.Compare(a.hour, b.hour), -cmp.Compare(g[a].plays, g[b].plays), cmp.Compare(a.item, b.item))
	})
	var out [][]string
	per := map[int64]int{}
	for _, k := range keys {
		if per[k.hour]++; per[k.hour] <= 3 {
			out = append(out, []string{time.UnixMilli(k.hour).In(m.loc).Format(time.DateTime), utoa(k.item), utoa(g[k].plays), utoa(g[k].listened)})
		}
	}
	return out
}

func (m *docModel) listeningPerDay() [][]string {
	var out [][]string
	for ago := 3; ago >= 1; ago-- {
		g := group(m.where(func(e *ingest.Event) bool { return m.ago(e) == ago && rollupType(e) }), func(e *ingest.Event) ingest.Biz { return e.Biz })
		for _, b := range slices.Sorted(maps.Keys(g)) {
			c := g[b]
			out = append(out, []string{m.day(ago), b.String(), utoa(c.plays), utoa(c.listened), f1(float64(c.listened) / 3_600_000)})
		}
	}
	return out
}

func (m *docModel) completion() (perItem, funnel [][]string) {
	type ik struct {
		biz  ingest.Biz
		item uint64
	}
	type fin struct{ n, half, done uint64 }
	items, bizes := map[ik]*fin{}, map[ingest.Biz]*fin{}
	for k, p := range m.lww {
		if items[ik{k.biz, k.item}] == nil {
			items[ik{k.biz, k.item}] = &fin{}
		}
		if bizes[k.biz] == nil {
			bizes[k.biz] = &fin{}
		}
		for _, f := range []*fin{items[ik{k.biz, k.item}], bizes[k.biz]} {
			f.n++
			if p.pos*2 >= p.dur {
				f.half++
			}
			if finished(p.pos, p.dur) {
				f.done++
			}
		}
	}
	keys := slices.SortedFunc(maps.Keys(items), func(a, b ik) int {
		return cmp.Or(-cmp.Compare(items[a].n, items[b].n), cmp.Compare(a.biz, b.biz), cmp.Compare(a.item, b.item))
	})
	for _, k := range keys[:min(5, len(keys))] {
		f := items[k]
		perItem = append(perItem, []string{k.biz.String(), utoa(k.item), utoa(f.n), utoa(f.done), f3(float64(f.done) / float64(f.n))})
	}
	for _, b := range slices.Sorted(maps.Keys(bizes)) {
		f := bizes[b]
		funnel = append(funnel, []string{b.String(), utoa(f.n), utoa(f.half), utoa(f.done), f3(float64(f.done) / float64(f.n))})
	}
	return perItem, funnel
}

// activePerBiz: distinct users per biz over days from..to ago.
func (m *docModel) activePerBiz(from, to int) [][]string {
	g := map[ingest.Biz]map[uint64]bool{}
	for _, e := range m.where(func(e *ingest.Event) bool { a := m.ago(e); return a >= from && a <= to }) {
		if g[e.Biz] == nil {
			g[e.Biz] = map[uint64]bool{}
		}
		g[e.Biz][e.UserID] = true
	}
	var out [][]string
	for _, b := range slices.Sorted(maps.Keys(g)) {
		out = append(out, []string{b.String(), utoa(uint64(len(g[b])))})
	}
	return out
}

func (m *docModel) retention() [][]string {
	first, active := map[uint64]int{}, map[uint64]map[int]bool{}
	for i := range m.evs {
		e := &m.evs[i]
		a := m.ago(e)
		if f, ok := first[e.UserID]; !ok || a > f {
			first[e.UserID] = a
		}
		if active[e.UserID] == nil {
			active[e.UserID] = map[int]bool{}
		}
		active[e.UserID][a] = true
	}
	var out [][]string
	for ago := 10; ago >= 8; ago-- {
		var n, d1, d7 uint64
		for u, f := range first {
			if f != ago {
				continue
			}
			n++
			if active[u][ago-1] {
				d1++
			}
			if active[u][ago-7] {
				d7++
			}
		}
		if n > 0 {
			out = append(out, []string{m.day(ago), utoa(n), utoa(d1), utoa(d7), f3(float64(d1) / float64(n)), f3(float64(d7) / float64(n))})
		}
	}
	return out
}

func (m *docModel) stations() [][]string {
	g := group(m.where(func(e *ingest.Event) bool {
		return e.StationID != 0 && (e.Type == ingest.TypePlay || e.Type == ingest.TypeSkip) && m.ago(e) <= 7
	}), func(e *ingest.Event) uint64 { return e.StationID })
	var out [][]string
	for _, st := range slices.Sorted(maps.Keys(g)) {
		c := g[st]
		out = append(out, []string{utoa(st), utoa(c.plays), utoa(c.skips), f3(float64(c.skips) / float64(c.plays+c.skips))})
	}
	return out
}

// affinity: the user's tags and categories from play/skip events (the
// rollup) and the tags of every item played, liked or skipped (the
// read-time join over user_item_daily).
func (m *docModel) affinity() (tags, cats, joined [][]string) {
	mine := m.where(func(e *ingest.Event) bool { return e.UserID == docUser && m.ago(e) < 30 })
	tagC, catC, joinC := map[string]*counts{}, map[string]*counts{}, map[string]*counts{}
	get := func(g map[string]*counts, k string) *counts {
		if g[k] == nil {
			g[k] = &counts{}
		}
		return g[k]
	}
	for _, e := range mine {
		it := seed.ItemOf(e.ItemID)
		if e.Type == ingest.TypePlay || e.Type == ingest.TypeSkip {
			for _, t := range it.Tags {
				get(tagC, t).add(e)
			}
			get(catC, it.Category).add(e)
		}
		if e.Type == ingest.TypePlay || e.Type == ingest.TypeSkip || e.Type == ingest.TypeLike {
			for _, t := range it.Tags {
				get(joinC, t).add(e)
			}
		}
	}
	score := func(c *counts) float64 { return float64(c.listened)/60000 + float64(c.plays) - 2*float64(c.skips) }
	rank := func(g map[string]*counts) [][]string {
		keys := slices.SortedFunc(maps.Keys(g), func(a, b string) int { return cmp.Or(-cmp.Compare(score(g[a]), score(g[b])), cmp.Compare(a, b)) })
		var out [][]string
		for _, k := range keys[:min(5, len(keys))] {
			c := g[k]
			out = append(out, []string{k, utoa(c.plays), utoa(c.listened), utoa(c.skips), f1(score(c))})
		}
		return out
	}
	keys := slices.SortedFunc(maps.Keys(joinC), func(a, b string) int {
		return cmp.Or(-cmp.Compare(joinC[a].listened, joinC[b].listened), cmp.Compare(a, b))
	})
	for _, k := range keys[:min(5, len(keys))] {
		joined = append(joined, []string{k, utoa(joinC[k].plays), utoa(joinC[k].listened)})
	}
	return rank(tagC), rank(catC), joined
}

func (m *docModel) userItems() [][]string {
	type ik struct {
		biz  ingest.Biz
		item uint64
	}
	g := group(m.where(func(e *ingest.Event) bool {
		return e.UserID == docUser && m.ago(e) < 30 && (e.Type == ingest.TypePlay || e.Type == ingest.TypeSkip || e.Type == ingest.TypeLike)
	}), func(e *ingest.Event) ik { return ik{e.Biz, e.ItemID} })
	keys := slices.SortedFunc(maps.Keys(g), func(a, b ik) int {
		return cmp.Or(-cmp.Compare(g[a].listened, g[b].listened), cmp.Compare(a.biz, b.biz), cmp.Compare(a.item, b.item))
	})
	var out [][]string
	for _, k := range keys[:min(5, len(keys))] {
		c := g[k]
		out = append(out, []string{k.biz.String(), utoa(k.item), utoa(c.plays), utoa(c.listened), utoa(c.likes), utoa(c.skips)})
	}
	return out
}

func (m *docModel) gifts() (totals, ranking [][]string) {
	week := m.where(func(e *ingest.Event) bool { a := m.ago(e); return e.Type == ingest.TypeGift && a >= 1 && a <= 7 })
	type tot struct{ value, n uint64 }
	rooms, givers, users := map[uint64]*tot{}, map[uint64]map[uint64]bool{}, map[uint64]*tot{}
	for _, e := range week {
		if rooms[e.RoomID] == nil {
			rooms[e.RoomID], givers[e.RoomID] = &tot{}, map[uint64]bool{}
		}
		rooms[e.RoomID].value += e.Value
		rooms[e.RoomID].n++
		givers[e.RoomID][e.UserID] = true
		if e.RoomID == docRoom {
			if users[e.UserID] == nil {
				users[e.UserID] = &tot{}
			}
			users[e.UserID].value += e.Value
			users[e.UserID].n++
		}
	}
	for _, r := range slices.Sorted(maps.Keys(rooms)) {
		totals = append(totals, []string{utoa(r), utoa(rooms[r].value), utoa(rooms[r].n), utoa(uint64(len(givers[r])))})
	}
	keys := slices.SortedFunc(maps.Keys(users), func(a, b uint64) int { return cmp.Or(-cmp.Compare(users[a].value, users[b].value), cmp.Compare(a, b)) })
	for _, k := range keys[:min(5, len(keys))] {
		ranking = append(ranking, []string{utoa(k), utoa(users[k].value), utoa(users[k].n)})
	}
	return totals, ranking
}

// pk replays api.md's PK rule over rooms 1 and 2, yesterday 18:00–24:00.
func (m *docModel) pk() [][]string {
	y := m.today.AddDate(0, 0, -1)
	from, to := y.Add(18*time.Hour).UnixMilli(), m.today.UnixMilli()
	gs := m.where(func(e *ingest.Event) bool {
		return e.Type == ingest.TypeGift && (e.RoomID == 1 || e.RoomID == 2) && e.TS >= from && e.TS < to
	})
	slices.SortStableFunc(gs, func(a, b *ingest.Event) int { return cmp.Or(cmp.Compare(a.TS, b.TS), cmp.Compare(a.UserID, b.UserID)) })
	lead, decided, winner := int64(0), 0, "undecided"
	for i, g := range gs {
		d := int64(g.Value / 10)
		if g.RoomID != 1 {
			d = -d
		}
		lead += d
		if decided == 0 && (lead >= 50 || lead <= -50) {
			decided, winner = i+1, map[bool]string{true: "room 1", false: "room 2"}[lead > 0]
		}
	}
	return [][]string{{utoa(uint64(len(gs))), fmt.Sprint(decided), winner}}
}

// sessions: yesterday's progress reports per (biz, user, item), last − first.
func (m *docModel) sessions() [][]string {
	type sk struct {
		biz        ingest.Biz
		user, item uint64
	}
	lo, hi := map[sk]int64{}, map[sk]int64{}
	for _, e := range m.where(func(e *ingest.Event) bool { return e.Type == ingest.TypeProgress && m.ago(e) == 1 }) {
		k := sk{e.Biz, e.UserID, e.ItemID}
		if v, ok := lo[k]; !ok || e.TS < v {
			lo[k] = e.TS
		}
		hi[k] = max(hi[k], e.TS)
	}
	per := map[ingest.Biz][]uint64{}
	for k := range lo {
		per[k.biz] = append(per[k.biz], uint64((hi[k]-lo[k])/1000))
	}
	var out [][]string
	for _, b := range slices.Sorted(maps.Keys(per)) {
		v := per[b]
		slices.Sort(v)
		// quantileExact(level) is the element at index floor(level * n)
		q := func(level float64) uint64 { return v[min(len(v)-1, int(level*float64(len(v))))] }
		out = append(out, []string{b.String(), utoa(uint64(len(v))), fmt.Sprint([]uint64{q(0.5), q(0.9)})})
	}
	return out
}

func (m *docModel) topListeners() [][]string {
	g := group(m.where(func(e *ingest.Event) bool { return m.ago(e) == 1 }), func(e *ingest.Event) uint64 { return e.UserID })
	keys := slices.SortedFunc(maps.Keys(g), func(a, b uint64) int { return cmp.Or(-cmp.Compare(g[a].listened, g[b].listened), cmp.Compare(a, b)) })
	var out [][]string
	for _, k := range keys[:min(5, len(keys))] {
		out = append(out, []string{utoa(k), utoa(g[k].listened), utoa(g[k].plays)})
	}
	return out
}
