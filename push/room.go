package push

import (
	"strconv"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/onair/onair/rooms/wire"
)

// room is one room's state on this node: its viewers, the frames waiting
// for the next tick, the latest state frames and a ring of recent danmaku
// and gifts for snapshots. Events (danmaku, gifts) are ordered by seq, the
// Kafka offset: a room maps to one partition, so every node sees one order.
type room struct {
	id   uint64
	g    *Gateway
	refs int // under the hub shard's lock

	load sync.Once // reads Redis for the first viewer (see loadRoom)

	mu      sync.Mutex
	clients map[*client]struct{}
	// viewers counts each user's connections here: the head-count is of
	// users (online.go), not connections.
	viewerConns map[uint64]int
	// ring holds the last RingSize events, seq ascending.
	ring []frame
	// knownFrom: every event with seq >= knownFrom (up to lastSeq) is in
	// the ring; older ones may be missing (evicted, or before this node's
	// first viewer and beyond Redis' list).
	knownFrom int64
	lastSeq   int64 // highest event seq taken in
	// flushedSeq is the highest event seq already handed to the viewers:
	// a snapshot covers up to it, the next batch starts after it.
	flushedSeq   int64
	pending      []frame          // events since the last tick
	pendingState map[string]frame // latest state frame per type since the last tick
	state        map[string]frame // latest state frame per type
	danmakuTick  int              // danmaku pending in this tick
	giftsUntil   time.Time        // acks are checked until then
	scratch      []*client        // flush's copy of clients (only the tick goroutine uses it)
}

func newRoom(g *Gateway, id uint64) *room {
	// Offsets start at 0: -1 is "no event yet".
	return &room{id: id, g: g, clients: make(map[*client]struct{}), viewerConns: make(map[uint64]int), lastSeq: -1, flushedSeq: -1,
		pendingState: make(map[string]frame), state: make(map[string]frame)}
}

// add takes in one consumed frame: state frames replace older versions,
// events join the ring and the next batch (danmaku beyond
// MaxDanmakuPerTick are shed). A replayed event (seq not above lastSeq) is
// dropped, so a viewer never gets one twice.
func (r *room) add(f frame) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if f.class == classState {
		if cur, ok := r.state[f.typ]; ok && !f.newer(cur) {
			return
		}
		r.state[f.typ] = f
		r.pendingState[f.typ] = f
		return
	}
	if f.seq <= r.lastSeq {
		return
	}
	if f.class == classDanmaku {
		if r.danmakuTick >= r.g.cfg.MaxDanmakuPerTick {
			r.g.m.dropped.WithLabelValues(classNames[classDanmaku], "room_flood").Inc()
			return
		}
		r.danmakuTick++
	}
	r.lastSeq = f.seq
	r.pushRing(f)
	r.pending = append(r.pending, f)
}

func (r *room) pushRing(f frame) {
	if len(r.ring) >= r.g.cfg.RingSize {
		r.knownFrom = r.ring[0].seq + 1
		copy(r.ring, r.ring[1:])
		r.ring = r.ring[:len(r.ring)-1]
	}
	r.ring = append(r.ring, f)
}

// flush sends what arrived since the last tick: one batch frame per level
// present, encoded once and written as the same prepared bytes to every
// connection at that level.
func (r *room) flush(now time.Time) {
	r.mu.Lock()
	checkAcks := now.Before(r.giftsUntil)
	if len(r.pending) == 0 && len(r.pendingState) == 0 {
		r.mu.Unlock()
		if checkAcks {
			r.checkAcks(now)
		}
		return
	}
	frames := r.pending
	for _, f := range r.pendingState {
		frames = append(frames, f)
	}
	var gifts []frame
	for _, f := range r.pending {
		if f.class == classGift {
			gifts = append(gifts, f)
		}
		if !f.at.IsZero() {
			r.g.m.fanoutDelay.Observe(now.Sub(f.at).Seconds())
		}
	}
	if len(gifts) > 0 {
		r.giftsUntil = now.Add(3*r.g.cfg.AckTimeout + time.Second)
		checkAcks = true
	}
	if len(r.pending) > 0 {
		r.flushedSeq = r.pending[len(r.pending)-1].seq
	}
	r.pending, r.danmakuTick = nil, 0
	clear(r.pendingState)
	r.scratch = r.scratch[:0]
	for c := range r.clients {
		r.scratch = append(r.scratch, c)
	}
	r.mu.Unlock()

	var prepared [numLevels]*websocket.PreparedMessage
	var built [numLevels]bool
	for _, c := range r.scratch {
		l := c.level()
		if !built[l] {
			built[l] = true
			prepared[l] = r.encode(frames, l)
		}
		if prepared[l] == nil {
			continue
		}
		var g []frame
		if l.receives(classGift) {
			g = gifts
		}
		c.send(outMsg{pm: prepared[l], gifts: g}, now)
	}
	clear(r.scratch)
	if checkAcks {
		r.checkAcks(now)
	}
}

// encode returns the batch frame of the frames a level receives, or nil.
func (r *room) encode(frames []frame, l level) *websocket.PreparedMessage {
	b, ok := appendBatch(make([]byte, 0, 256), frames, l)
	if !ok {
		return nil
	}
	pm, err := websocket.NewPreparedMessage(websocket.TextMessage, b)
	if err != nil { // only compression can fail, and it is off
		r.g.log.Error("push: cannot prepare batch", "room", r.id, "bytes", len(b), "err", err)
		return nil
	}
	r.g.m.batches.Inc()
	return pm
}

func (r *room) checkAcks(now time.Time) {
	r.mu.Lock()
	r.scratch = r.scratch[:0]
	for c := range r.clients {
		if c.unacked.Load() > 0 {
			r.scratch = append(r.scratch, c)
		}
	}
	r.mu.Unlock()
	for _, c := range r.scratch {
		c.resendDue(now)
	}
	clear(r.scratch)
}

// join adds c to the room and queues its snapshot first, under the room's
// lock: events up to flushedSeq are in the snapshot, later ones reach c in
// the next batch, so c sees no gap and no duplicate. since < 0 means a
// fresh join (the last RecentSize danmaku); else every event after since.
func (r *room) join(c *client, since int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c.send(outMsg{data: r.snapshotLocked(since)}, time.Now())
	r.clients[c] = struct{}{}
	r.viewerConns[c.user]++
}

// leave removes c and reports whether it was its user's last connection
// in the room on this node.
func (r *room) leave(c *client) (lastOfUser bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.clients[c]; !ok {
		return false
	}
	delete(r.clients, c)
	if r.viewerConns[c.user]--; r.viewerConns[c.user] > 0 {
		return false
	}
	delete(r.viewerConns, c.user)
	return true
}

// users lists the distinct users with a connection in the room here.
func (r *room) users() []uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]uint64, 0, len(r.viewerConns))
	for u := range r.viewerConns {
		out = append(out, u)
	}
	return out
}

// snapshotLocked encodes the snapshot frame:
//
//	{"type":"snapshot","room_id":5,"seq":812,"gap":false,"leaderboard":{...}|null,
//	 "pk":{...}|null,"online":{...}|null,"room":{...}|null,"recent":[...]}
func (r *room) snapshotLocked(since int64) []byte {
	b := make([]byte, 0, 1024)
	b = append(b, `{"type":"snapshot","room_id":`...)
	b = strconv.AppendUint(b, r.id, 10)
	b = append(b, `,"seq":`...)
	b = strconv.AppendInt(b, max(r.flushedSeq, since), 10)
	b = append(b, `,"gap":`...)
	b = strconv.AppendBool(b, since >= 0 && since+1 < r.knownFrom)
	for _, typ := range []string{wire.TypeLeaderboard, wire.TypePK, wire.TypeOnline, wire.TypeRoom} {
		b = append(b, ',', '"')
		b = append(b, typ...)
		b = append(b, '"', ':')
		if f, ok := r.state[typ]; ok {
			b = append(b, f.raw...)
		} else {
			b = append(b, "null"...)
		}
	}
	b = append(b, `,"recent":[`...)
	for i, f := range r.recentLocked(since) {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, f.raw...)
	}
	return append(b, "]}"...)
}

// recentLocked returns the events a snapshot carries, seq ascending: after
// since (danmaku and gifts), or for a fresh join the last RecentSize danmaku.
// Events still pending (seq > flushedSeq) come in the next batch instead.
func (r *room) recentLocked(since int64) []frame {
	end := len(r.ring)
	for end > 0 && r.ring[end-1].seq > r.flushedSeq {
		end--
	}
	if since >= 0 {
		start := end
		for start > 0 && r.ring[start-1].seq > since {
			start--
		}
		return r.ring[start:end]
	}
	var out []frame
	for i := end - 1; i >= 0 && len(out) < r.g.cfg.RecentSize; i-- {
		if r.ring[i].class == classDanmaku {
			out = append(out, r.ring[i])
		}
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}
