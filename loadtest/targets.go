package loadtest

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/onair/onair/internal/authtoken"
)

// kind is one request shape. Every HTTP scenario is a weighted mix of
// kinds, all made by one generator: a new scenario (smart-radio playlists,
// leaderboards) adds its kinds to fill and a line to scenarioMixes; a
// non-HTTP driver (a WebSocket swarm against push) reuses the generator's
// users and tokens beside Run.
type kind uint8

const (
	kindProgress kind = iota // POST /v1/progress, one event
	kindBatch                // POST /v1/events, Batch events of one user
	kindHistory              // GET /v1/history?limit=20
	kindContinue             // GET /v1/continue?limit=20
	kindHello                // GET /hello on the in-process baseline
	kindPlaylist             // GET /v1/stations/{1|2}/playlist?limit=20 (radio.go)
	kindRooms                // GET /v1/rooms?live=true&limit=20: the live-room list
)

var kindNames = [...]string{"progress", "batch", "history", "continue", "hello", "playlist", "rooms"}

type weighted struct {
	kind   kind
	weight int // percent
}

// scenarioMixes is the read-only table of scenarios.
var scenarioMixes = map[string][]weighted{
	"progress": {{kindProgress, 100}},
	"batch":    {{kindBatch, 100}},
	"history":  {{kindHistory, 100}},
	"continue": {{kindContinue, 100}},
	"mixed":    {{kindProgress, 60}, {kindBatch, 10}, {kindHistory, 25}, {kindContinue, 5}},
	"radio":    {{kindPlaylist, 100}},
	"rooms":    {{kindRooms, 100}},
}

// Scenarios returns the names accepted by RunConfig.Scenario, sorted.
func Scenarios() []string {
	names := make([]string, 0, len(scenarioMixes))
	for n := range scenarioMixes {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// zipfS is the Zipf exponent for users and items: a few heavy users and hit
// items, a long tail, roughly what play logs show.
const zipfS = 1.1

// probeUsers is the number of reserved users (ids Users+1..Users+probeUsers)
// that carry visibility probes: no other request touches them, so the probed
// event is the newest in that user's history.
const probeUsers = 256

// trackHeader carries a write's sequence number from the targeter to the
// tracker, which removes it before the request leaves.
const trackHeader = "X-Onair-Loadtest-Write"

// generator makes the requests of every scenario. Targeters it returns are
// safe for vegeta's concurrent workers.
type generator struct {
	base    string
	runID   string
	users   int
	items   int
	batch   int
	session int      // items per batch as a listening session; 0: independent events
	tokens  []string // "Bearer ..." for user id i+1; probe users at the end
	// headers[i] is user i+1's header for writes, made on first use and
	// then shared: vegeta copies a target's header into each request, and
	// an untracked write never changes it.
	headers    []atomic.Pointer[http.Header]
	probeEvery uint64   // 0: no probes
	track      bool     // remember writes in pending for the tracker
	pending    sync.Map // seq (string) -> *write
	seq        atomic.Uint64
	probeSeq   atomic.Uint64
	drawers    sync.Pool
	now        func() time.Time
}

// write is one POST that carries events, remembered until its response.
type write struct {
	first eventID // the id of its only event, or of event 0 of a batch
	n     int
	probe *probe
}

// ids are the write's event ids, as fillWrite put them in the body.
func (w *write) ids() []string {
	if w.n == 1 {
		return []string{string(w.first.append(nil))}
	}
	ids := make([]string, w.n)
	id := w.first
	for i := range ids {
		id.i = i
		ids[i] = string(id.append(nil))
	}
	return ids
}

// probe is an event whose visibility in GET /v1/history is measured.
type probe struct {
	user     uint64
	token    string
	biz      string
	item     uint64
	ts       int64     // ms, the event's ts and the expected updated_at
	accepted time.Time // when the 202 arrived
}

type drawer struct {
	r     *mrand.Rand
	users *mrand.Zipf
	items *mrand.Zipf
}

func newRunID() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// newGenerator signs one token per user (and per probe user) up front, so
// the attack measures the server, not HMAC on the client.
func newGenerator(cfg RunConfig, track bool, probeEvery int) (*generator, error) {
	g := &generator{
		base:    cfg.Target,
		runID:   newRunID(),
		users:   cfg.Users,
		items:   cfg.Items,
		batch:   cfg.Batch,
		session: cfg.SessionItems,
		track:   track,
		now:     time.Now,
	}
	if probeEvery > 0 {
		g.probeEvery = uint64(probeEvery)
	}
	ttl := cfg.Duration + 2*time.Hour
	n := cfg.Users
	if g.probeEvery > 0 {
		n += probeUsers
	}
	g.tokens = make([]string, n)
	for i := range g.tokens {
		tok, err := authtoken.Sign(cfg.TokenSecret, uint64(i+1), "", ttl)
		if err != nil {
			return nil, fmt.Errorf("cannot sign token for user %d: %w", i+1, err)
		}
		g.tokens[i] = "Bearer " + tok
	}
	g.headers = make([]atomic.Pointer[http.Header], n)
	g.initDrawers()
	return g, nil
}

// writeHeader is the header of a write by user uid: shared unless the write
// is tracked (the tracker's header is per request).
func (g *generator) writeHeader(uid uint64) http.Header {
	p := &g.headers[uid-1]
	if h := p.Load(); h != nil && !g.track {
		return *h
	}
	h := http.Header{"Authorization": {g.tokens[uid-1]}, "Content-Type": {"application/json"}}
	if !g.track {
		p.Store(&h)
	}
	return h
}

// initDrawers gives each concurrent targeter call its own random source:
// math/rand/v2 sources are not safe for concurrent use.
func (g *generator) initDrawers() {
	var seeds atomic.Uint64
	seed := mrand.Uint64()
	g.drawers.New = func() any {
		r := mrand.New(mrand.NewPCG(seed, seeds.Add(1)))
		return &drawer{
			r:     r,
			users: mrand.NewZipf(r, zipfS, 1, uint64(max(g.users, 1)-1)),
			items: mrand.NewZipf(r, zipfS, 1, uint64(max(g.items, 1)-1)),
		}
	}
}

// targeter returns a vegeta.Targeter drawing kinds from mix.
func (g *generator) targeter(mix []weighted) vegeta.Targeter {
	return g.targeterAt(g.base, mix)
}

// targeterAt is targeter with the requests sent to base instead of the
// generator's target (RunConfig.Ceiling sends them to the hello-world).
func (g *generator) targeterAt(base string, mix []weighted) vegeta.Targeter {
	u := urlsAt(base)
	total := 0
	for _, w := range mix {
		total += w.weight
	}
	return func(t *vegeta.Target) error {
		d := g.drawers.Get().(*drawer)
		defer g.drawers.Put(d)
		k := mix[0].kind
		if len(mix) > 1 {
			x := d.r.IntN(total)
			for _, w := range mix {
				if x < w.weight {
					k = w.kind
					break
				}
				x -= w.weight
			}
		}
		g.fill(t, k, d, &u)
		return nil
	}
}

// urls are the request URLs of each kind under one base, built once per
// targeter rather than once per request.
type urls [len(kindNames)]string

func urlsAt(base string) urls {
	return urls{
		kindProgress: base + "/v1/progress",
		kindBatch:    base + "/v1/events",
		kindHistory:  base + "/v1/history?limit=20",
		kindContinue: base + "/v1/continue?limit=20",
		kindHello:    base + "/hello",
		kindPlaylist: base + radioPlaylistPath(1),
		kindRooms:    base + "/v1/rooms?live=true&limit=20",
	}
}

func (g *generator) fill(t *vegeta.Target, k kind, d *drawer, u *urls) {
	t.URL = u[k]
	switch k {
	case kindProgress, kindBatch:
		g.fillWrite(t, k, d)
	case kindHistory, kindContinue, kindRooms:
		uid := d.users.Uint64() + 1
		t.Method = http.MethodGet
		t.Header = http.Header{"Authorization": {g.tokens[uid-1]}}
	case kindHello:
		t.Method = http.MethodGet
	case kindPlaylist:
		g.fillPlaylist(t, d, u)
	}
}

// bizOf spreads items over business lines, deterministically so that an
// item id always means the same (biz, item).
func bizOf(item uint64) string {
	switch item % 20 {
	case 0, 1, 2, 3, 4, 5, 6, 7, 8, 9:
		return "audio"
	case 10, 11, 12, 13, 14, 15:
		return "video"
	case 16, 17:
		return "radio"
	case 18:
		return "article"
	default:
		return "comic"
	}
}

// durationOf is an item's length: 1 to 61 minutes.
func durationOf(item uint64) int64 { return 60_000 + int64(item*7919%3600)*1000 }

func (g *generator) fillWrite(t *vegeta.Target, k kind, d *drawer) {
	seq := g.seq.Add(1)
	n, first := 1, eventID{g.runID, seq, -1}
	if k == kindBatch {
		n, first.i = g.batch, 0
	}
	var uid uint64
	isProbe := g.probeEvery > 0 && seq%g.probeEvery == 0
	if isProbe {
		uid = uint64(g.users) + 1 + g.probeSeq.Add(1)%probeUsers
	} else {
		uid = d.users.Uint64() + 1
	}
	now := g.now().UnixMilli()

	b := make([]byte, 0, 64+n*190)
	var last progressEvent
	if k == kindProgress {
		last = g.drawProgress(d, now)
		b = last.append(b, false, first)
	} else {
		b = append(b, `{"events":[`...)
		// A session plays its items one after the other, the position of
		// each advancing by a 5 s report interval, on one device.
		var sess [maxSessionItems]progressEvent
		for j := 0; j < g.session; j++ {
			sess[j] = g.drawProgress(d, 0)
			sess[j].device = sess[0].device
		}
		for i := 0; i < n; i++ {
			if i > 0 {
				b = append(b, ',')
			}
			// Strictly increasing ts within a batch: the last event is the
			// newest, which is what a probe looks for.
			ts := now - int64(n-1-i)
			id := first
			id.i = i
			x := d.r.IntN(10)
			var cur *progressEvent
			if g.session > 0 {
				cur = &sess[i*g.session/n]
			}
			switch {
			case x < 8 || (isProbe && i == n-1):
				if cur != nil {
					cur.ts, cur.pos = ts, min(cur.pos+reportEveryMs, cur.dur)
					last = *cur
				} else {
					last = g.drawProgress(d, ts)
				}
				b = last.append(b, true, id)
			case x == 8:
				b = appendSimple(b, "play", g.itemOf(d, cur), ts, id, int64(d.r.IntN(300_000)))
			default:
				b = appendSimple(b, "like", g.itemOf(d, cur), ts, id, -1)
			}
		}
		b = append(b, "]}"...)
	}
	t.Method = http.MethodPost
	t.Body = b
	t.Header = g.writeHeader(uid)
	if !g.track {
		return
	}
	w := &write{first: first, n: n}
	if isProbe {
		w.probe = &probe{user: uid, token: g.tokens[uid-1], biz: last.biz, item: last.item, ts: last.ts}
	}
	key := strconv.FormatUint(seq, 10)
	g.pending.Store(key, w)
	t.Header.Set(trackHeader, key)
}

// eventID is the id of a generated event: lt-<run>-<seq> for a single
// write's event, lt-<run>-<seq>-<i> for event i of a batch (i >= 0), as
// write.ids lists them.
type eventID struct {
	run string
	seq uint64
	i   int
}

func (id eventID) append(b []byte) []byte {
	b = append(b, "lt-"...)
	b = append(b, id.run...)
	b = append(b, '-')
	b = strconv.AppendUint(b, id.seq, 10)
	if id.i >= 0 {
		b = append(b, '-')
		b = strconv.AppendInt(b, int64(id.i), 10)
	}
	return b
}

// maxSessionItems bounds RunConfig.SessionItems.
const maxSessionItems = 10

// reportEveryMs is how far a session's position advances per report: apps
// report progress every few seconds.
const reportEveryMs = 5000

// itemOf is the item of a play or like: the session's current item, or a
// fresh draw.
func (g *generator) itemOf(d *drawer, cur *progressEvent) uint64 {
	if cur != nil {
		return cur.item
	}
	return d.items.Uint64() + 1
}

type progressEvent struct {
	biz      string
	item     uint64
	pos, dur int64
	ts       int64
	device   string
}

var devices = [...]string{"lt-ios", "lt-android", "lt-web"}

func (g *generator) drawProgress(d *drawer, ts int64) progressEvent {
	item := d.items.Uint64() + 1
	dur := durationOf(item)
	return progressEvent{
		biz:    bizOf(item),
		item:   item,
		dur:    dur,
		pos:    1 + d.r.Int64N(dur),
		ts:     ts,
		device: devices[d.r.IntN(len(devices))],
	}
}

// append writes e as JSON. Every string is plain ASCII chosen here, so no
// escaping is needed.
func (e progressEvent) append(b []byte, typed bool, id eventID) []byte {
	b = append(b, '{')
	if typed {
		b = append(b, `"type":"progress",`...)
	}
	b = append(b, `"biz":"`...)
	b = append(b, e.biz...)
	b = append(b, `","item_id":`...)
	b = strconv.AppendUint(b, e.item, 10)
	b = append(b, `,"position_ms":`...)
	b = strconv.AppendInt(b, e.pos, 10)
	b = append(b, `,"duration_ms":`...)
	b = strconv.AppendInt(b, e.dur, 10)
	b = append(b, `,"ts":`...)
	b = strconv.AppendInt(b, e.ts, 10)
	b = append(b, `,"device":"`...)
	b = append(b, e.device...)
	b = append(b, `","event_id":"`...)
	b = id.append(b)
	return append(b, `"}`...)
}

// appendSimple writes a play (listened >= 0) or like event.
func appendSimple(b []byte, typ string, item uint64, ts int64, id eventID, listened int64) []byte {
	b = append(b, `{"type":"`...)
	b = append(b, typ...)
	b = append(b, `","biz":"`...)
	b = append(b, bizOf(item)...)
	b = append(b, `","item_id":`...)
	b = strconv.AppendUint(b, item, 10)
	if listened >= 0 {
		b = append(b, `,"listened_ms":`...)
		b = strconv.AppendInt(b, listened, 10)
	}
	b = append(b, `,"ts":`...)
	b = strconv.AppendInt(b, ts, 10)
	b = append(b, `,"event_id":"`...)
	b = id.append(b)
	return append(b, `"}`...)
}

// kindOf names the kind of a result from its URL, for plots and event
// counting.
func kindOf(rawURL string) kind {
	for i := len(rawURL) - 1; i >= 0; i-- {
		if rawURL[i] == '/' {
			p := rawURL[i+1:]
			for j := 0; j < len(p); j++ {
				if p[j] == '?' {
					p = p[:j]
					break
				}
			}
			switch p {
			case "progress":
				return kindProgress
			case "events":
				return kindBatch
			case "history":
				return kindHistory
			case "continue":
				return kindContinue
			case "playlist":
				return kindPlaylist
			case "rooms":
				return kindRooms
			}
			return kindHello
		}
	}
	return kindHello
}
