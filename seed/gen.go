// Package seed fills a running onair with realistic synthetic traffic
// through its HTTP API, as apps and an operator would: the demo catalog,
// stations and live rooms through the admin routes, then events posted
// with a service token on behalf of Zipf-distributed users. `onair seed`
// runs it.
//
// The traffic is a pure function of GenConfig (Generate), so a test can
// regenerate exactly what was sent and compute every documented query's
// answer from it, independently of ClickHouse.
package seed

import (
	"math"
	"math/rand"
	"time"

	"github.com/onair/onair/ingest"
)

// GenConfig describes the synthetic traffic. Zero fields take the defaults
// below (see withDefaults).
type GenConfig struct {
	// Events is how many events to generate (the last session is cut
	// short at the limit). Required, > 0.
	Events int
	// Users and Items bound the Zipf-distributed user and item ids (1..N).
	Users, Items int
	// Days is how many days back the traffic reaches (1 = today only).
	Days int
	// Stations and Rooms are how many radio stations and live rooms exist.
	Stations, Rooms int
	// Now is the newest possible event time; zero = time.Now.
	Now time.Time
	// Seed seeds the random source; the same config gives the same events.
	Seed int64
	// Loc is the time zone of the daily rhythm; nil = time.Local.
	Loc *time.Location
}

// Defaults of GenConfig's zero fields.
const (
	DefaultUsers    = 10_000
	DefaultItems    = 2_000
	DefaultDays     = 7
	DefaultStations = 4
	DefaultRooms    = 8
	// MaxDays keeps the oldest event inside the API's 30-day limit with a
	// day to spare for posting.
	MaxDays = 29
)

func (c GenConfig) withDefaults() GenConfig {
	if c.Users == 0 {
		c.Users = DefaultUsers
	}
	if c.Items == 0 {
		c.Items = DefaultItems
	}
	if c.Days == 0 {
		c.Days = DefaultDays
	}
	if c.Stations == 0 {
		c.Stations = DefaultStations
	}
	if c.Rooms == 0 {
		c.Rooms = DefaultRooms
	}
	if c.Now.IsZero() {
		c.Now = time.Now()
	}
	if c.Loc == nil {
		c.Loc = time.Local
	}
	return c
}

// hourWeights is the daily rhythm: relative activity per local hour, low
// at night, a morning commute bump, a lunch bump and the evening peak.
var hourWeights = [24]float64{3, 2, 1, 1, 1, 2, 4, 8, 10, 7, 6, 7, 9, 8, 6, 6, 7, 9, 11, 13, 15, 16, 12, 6}

// Session kinds and their shares of sessions.
const (
	shareListen = 0.62
	shareRadio  = 0.20 // the rest are live-room visits
)

// giftValues are the prices of the gifts users send.
var giftValues = [...]uint64{10, 50, 100, 200, 520, 1000}

// gen draws sessions; one per Generate call.
type gen struct {
	cfg    GenConfig
	r      *rand.Rand
	users  *rand.Zipf
	items  *rand.Zipf
	rooms  *rand.Zipf
	cumHr  [24]float64
	oldest time.Time
	nowMs  int64
	n      int // events emitted
	emit   func(*ingest.Event) bool
	stop   bool
}

// Generate calls emit with each event, in session order, until cfg.Events
// were emitted or emit returns false. Events of one session are in time
// order; sessions are not (apps report late, and the rollups must not care).
func Generate(cfg GenConfig, emit func(*ingest.Event) bool) {
	cfg = cfg.withDefaults()
	r := rand.New(rand.NewSource(cfg.Seed))
	g := &gen{cfg: cfg, r: r, emit: emit,
		users: rand.NewZipf(r, 1.1, 8, uint64(cfg.Users-1)),
		items: rand.NewZipf(r, 1.2, 4, uint64(cfg.Items-1)),
		rooms: rand.NewZipf(r, 1.3, 1, uint64(cfg.Rooms-1)),
	}
	sum := 0.0
	for h, w := range hourWeights {
		sum += w
		g.cumHr[h] = sum
	}
	day := time.Date(cfg.Now.In(cfg.Loc).Year(), cfg.Now.In(cfg.Loc).Month(), cfg.Now.In(cfg.Loc).Day(), 0, 0, 0, 0, cfg.Loc)
	g.oldest = day.AddDate(0, 0, -(cfg.Days - 1))
	g.nowMs = cfg.Now.UnixMilli()
	for !g.stop && g.n < cfg.Events {
		user := g.users.Uint64() + 1
		start := g.startTime()
		switch p := r.Float64(); {
		case p < shareListen:
			g.listen(user, start)
		case p < shareListen+shareRadio:
			g.radio(user, start)
		default:
			g.live(user, start)
		}
	}
}

// put emits one event unless the limit is reached; false ends the session
// (the limit, or the session would run past Now).
func (g *gen) put(e ingest.Event) bool {
	if g.stop || g.n >= g.cfg.Events {
		g.stop = true
		return false
	}
	if e.TS > g.nowMs {
		return false
	}
	g.n++
	if !g.emit(&e) {
		g.stop = true
	}
	return !g.stop
}

// startTime draws a session start: a day of the window, an hour of the
// rhythm, a uniform minute; not after Now (put cuts a session at Now).
func (g *gen) startTime() time.Time {
	latest := g.cfg.Now
	for range 100 {
		d := g.r.Intn(g.cfg.Days)
		x := g.r.Float64() * g.cumHr[23]
		h := 0
		for g.cumHr[h] < x {
			h++
		}
		t := g.oldest.AddDate(0, 0, d).Add(time.Duration(h)*time.Hour + time.Duration(g.r.Int63n(int64(time.Hour))))
		if !t.After(latest) && !t.Before(g.oldest) {
			return t
		}
	}
	return latest.Add(-time.Duration(g.r.Int63n(int64(time.Hour))))
}

// listen is one listening session of one item: a progress report every few
// seconds while the position advances, then one play event with the time
// listened, and sometimes a like.
func (g *gen) listen(user uint64, start time.Time) {
	item := g.items.Uint64() + 1
	it := ItemOf(item)
	dur := it.DurationMs
	every := uint64(5+g.r.Intn(11)) * 1000 // 5..15 s
	var pos uint64
	if g.r.Float64() < 0.2 {
		pos = uint64(g.r.Int63n(int64(dur / 2)))
	}
	left := (dur - pos) / every
	k := uint64(1 + g.r.ExpFloat64()*10) // reports after the first
	if g.r.Float64() < 0.3 || k > left {
		k = left + 1 // to the end: the last report is at the duration
	}
	k = min(k, 360)
	ts := start.UnixMilli()
	for j := uint64(0); j <= k; j++ {
		p := min(pos+j*every, dur)
		if !g.put(ingest.Event{Type: ingest.TypeProgress, UserID: user, Biz: it.Biz, ItemID: item,
			PositionMs: p, DurationMs: dur, TS: ts + int64(j*every)}) {
			return
		}
	}
	end := ts + int64(k*every)
	listened := min(k*every, dur-pos)
	if !g.put(ingest.Event{Type: ingest.TypePlay, UserID: user, Biz: it.Biz, ItemID: item, ListenedMs: listened, TS: end + 1}) {
		return
	}
	if g.r.Float64() < 0.08 {
		g.put(ingest.Event{Type: ingest.TypeLike, UserID: user, Biz: it.Biz, ItemID: item, TS: end + 2})
	}
}

// radio is a visit to a station: a few items, each played (for part of it)
// or skipped. Stations differ in how often listeners skip.
func (g *gen) radio(user uint64, start time.Time) {
	st := uint64(1 + int(math.Min(float64(g.r.ExpFloat64()*1.5), float64(g.cfg.Stations-1))))
	skipRate := 0.1 + 0.08*float64(st%4)
	n := 1 + g.r.Intn(6)
	ts := start.UnixMilli()
	for range n {
		item := stationItem(st, g.items.Uint64()+1, g.cfg.Items)
		it := ItemOf(item)
		if g.r.Float64() < skipRate {
			ts += 3000 + g.r.Int63n(20_000)
			if !g.put(ingest.Event{Type: ingest.TypeSkip, UserID: user, Biz: it.Biz, ItemID: item, StationID: st, TS: ts}) {
				return
			}
			continue
		}
		listened := it.DurationMs/2 + uint64(g.r.Int63n(int64(it.DurationMs/2)+1))
		ts += int64(listened)
		if !g.put(ingest.Event{Type: ingest.TypePlay, UserID: user, Biz: it.Biz, ItemID: item, StationID: st, ListenedMs: listened, TS: ts}) {
			return
		}
	}
}

// stationItem maps a drawn item onto station st's programme: radio and
// audio items only, so each station plays its own part of the catalog.
func stationItem(st, item uint64, items int) uint64 {
	for range 20 {
		if b := ItemOf(item).Biz; b == ingest.BizRadio || b == ingest.BizAudio {
			return item
		}
		item = (item+st*7)%uint64(items) + 1
	}
	return item
}

// live is a visit to a live room: danmaku and sometimes gifts.
func (g *gen) live(user uint64, start time.Time) {
	room := g.rooms.Uint64() + 1
	ts := start.UnixMilli()
	for range g.r.Intn(6) {
		ts += 2000 + g.r.Int63n(30_000)
		if !g.put(ingest.Event{Type: ingest.TypeDanmaku, UserID: user, RoomID: room, Text: danmaku[g.r.Intn(len(danmaku))], TS: ts}) {
			return
		}
	}
	for range g.r.Intn(3) {
		ts += 1000 + g.r.Int63n(10_000)
		gift := uint64(1 + g.r.Intn(len(giftValues)))
		if !g.put(ingest.Event{Type: ingest.TypeGift, UserID: user, RoomID: room, AnchorID: AnchorOf(room),
			GiftID: gift, Value: giftValues[gift-1], TS: ts}) {
			return
		}
	}
}

var danmaku = [...]string{"hello", "666", "nice", "haha", "again!", "love this", "encore", "first time here"}

// AnchorOf is the user id of room's anchor.
func AnchorOf(room uint64) uint64 { return 900_000 + room }
