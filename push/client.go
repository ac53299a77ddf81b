package push

import (
	"encoding/json"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// client is one viewer's connection. Fan-out only enqueues (send); a
// writer goroutine exists only while the queue holds frames, and one
// reader goroutine waits for pings and acks, so an idle connection costs
// one parked goroutine and a few small buffers.
type client struct {
	g    *Gateway
	ws   *websocket.Conn
	user uint64
	room *room // nil: a personal-only connection (GET /v1/ws without room)
	// slot is the connection's id in its user's {u<id>}:ws ("" when it
	// holds none: no cluster limit, or admitted while Redis failed).
	slot string

	lvl     atomic.Int32 // a level
	unacked atomic.Int32 // gifts waiting for an ack

	mu      sync.Mutex
	queue   []outMsg
	writing bool
	closed  bool
	// stepped is when the connection last stepped down.
	stepped time.Time
	// pending holds the gifts sent and not yet acked, by id; nil when none.
	pending map[string]*pendingGift

	closeOnce sync.Once
}

// outMsg is one queued frame: a prepared batch (shared by the room's
// connections) or bytes of this connection's own (snapshot, re-sent gift,
// pong). gifts lists the gifts a batch carries, tracked once written.
type outMsg struct {
	pm    *websocket.PreparedMessage
	data  []byte
	gifts []frame
}

type pendingGift struct {
	raw    []byte
	due    time.Time
	resent bool
}

func (c *client) level() level { return level(c.lvl.Load()) }

// roomID is the connection's room, 0 for a personal-only connection.
func (c *client) roomID() uint64 {
	if c.room == nil {
		return 0
	}
	return c.room.id
}

// send queues m. The queue's fill decides the connection's level: at half
// it stops getting danmaku, at three quarters it gets state only, and a
// full queue closes it (DisconnectSlow); each step is counted. A slow
// connection never blocks the room: send only appends.
func (c *client) send(m outMsg, now time.Time) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	q := c.g.cfg.QueueSize
	n := len(c.queue)
	if n >= q {
		c.mu.Unlock()
		c.close(DisconnectSlow)
		return
	}
	switch l := c.level(); {
	case n >= q*3/4 && l < levelState:
		c.stepDown(levelState, now)
	case n >= q/2 && l < levelNoDanmaku:
		c.stepDown(levelNoDanmaku, now)
	}
	for _, f := range m.gifts {
		if c.pending == nil {
			c.pending = make(map[string]*pendingGift)
		}
		if _, ok := c.pending[f.id]; !ok {
			c.pending[f.id] = &pendingGift{raw: f.raw, due: now.Add(c.g.cfg.AckTimeout)}
			c.unacked.Add(1)
		}
	}
	c.queue = append(c.queue, m)
	start := !c.writing
	c.writing = true
	c.mu.Unlock()
	if start {
		go c.writeLoop()
	}
}

// stepDown lowers the connection's level; c.mu is held.
func (c *client) stepDown(to level, now time.Time) {
	c.lvl.Store(int32(to))
	c.stepped = now
	c.g.m.stepDowns.WithLabelValues(levelNames[to]).Inc()
	if n, ok := c.g.logs.stepDown.Due(); ok {
		c.g.log.Info("push: slow connection stepped down", "room", c.roomID(), "user", c.user, "to", levelNames[to], "queued", len(c.queue), "count", n)
	}
}

// writeLoop drains the queue and ends when it is empty. A connection that
// stepped down and then drained its queue gets every frame again.
func (c *client) writeLoop() {
	for {
		c.mu.Lock()
		if len(c.queue) == 0 || c.closed {
			c.writing = false
			c.queue = nil
			if c.level() != levelAll && !c.closed && time.Since(c.stepped) > time.Second {
				c.lvl.Store(int32(levelAll))
				c.g.m.recoveries.Inc()
			}
			c.mu.Unlock()
			return
		}
		m := c.queue[0]
		c.queue[0] = outMsg{}
		c.queue = c.queue[1:]
		c.mu.Unlock()

		_ = c.ws.SetWriteDeadline(time.Now().Add(c.g.cfg.WriteTimeout))
		var err error
		if m.pm != nil {
			err = c.ws.WritePreparedMessage(m.pm)
		} else {
			err = c.ws.WriteMessage(websocket.TextMessage, m.data)
		}
		if err != nil {
			c.g.log.Debug("push: write failed", "room", c.roomID(), "user", c.user, "err", err)
			c.close(DisconnectWriteFailed)
			continue
		}
		c.g.m.frames.Inc()
	}
}

// resendDue re-sends the gifts whose ack is overdue, once; a gift still
// unacked after that is given up (counted).
func (c *client) resendDue(now time.Time) {
	var resend [][]byte
	c.mu.Lock()
	for id, p := range c.pending {
		if now.Before(p.due) {
			continue
		}
		if p.resent {
			delete(c.pending, id)
			c.unacked.Add(-1)
			c.g.m.giftUnacked.Inc()
			continue
		}
		p.resent, p.due = true, now.Add(c.g.cfg.AckTimeout)
		resend = append(resend, p.raw)
	}
	c.mu.Unlock()
	for _, raw := range resend {
		c.g.m.giftResends.Inc()
		c.send(outMsg{data: raw}, now)
	}
}

func (c *client) ack(id string) {
	c.mu.Lock()
	if _, ok := c.pending[id]; ok {
		delete(c.pending, id)
		c.unacked.Add(-1)
	}
	c.mu.Unlock()
}

// pong is the reply to {"type":"ping"}, the same bytes for everyone.
var pong = []byte(`{"type":"pong"}`)

// readLoop reads the client's frames until the connection ends, then
// leaves the room. Every frame pushes the idle deadline forward.
func (c *client) readLoop() {
	defer c.g.leave(c)
	var bucket frameBucket
	for {
		_ = c.ws.SetReadDeadline(time.Now().Add(c.g.cfg.IdleTimeout))
		_, data, err := c.ws.ReadMessage()
		if err != nil {
			c.close(readDisconnect(err))
			return
		}
		if !bucket.allow(time.Now(), c.g.cfg.FrameRate, c.g.cfg.FrameBurst) {
			c.close(DisconnectTooManyFrames)
			return
		}
		var f clientFrame
		if err := json.Unmarshal(data, &f); err != nil {
			c.g.log.Debug("push: bad client frame", "room", c.roomID(), "user", c.user, "bytes", len(data), "err", err)
			c.close(DisconnectBadFrame)
			return
		}
		switch f.Type {
		case "ping":
			c.send(outMsg{data: pong}, time.Now())
		case "ack":
			c.ack(f.ID)
		default:
			c.g.log.Debug("push: unknown client frame", "room", c.roomID(), "user", c.user, "type", f.Type)
			c.close(DisconnectBadFrame)
			return
		}
	}
}

// readDisconnect names why a read failed.
func readDisconnect(err error) Disconnect {
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return DisconnectIdle
	case errors.Is(err, websocket.ErrReadLimit):
		return DisconnectTooBig
	}
	return DisconnectClient
}

// close sends the close frame of d (best effort) and closes the
// connection; the reader then ends and leaves the room. The first reason
// wins and is counted. The writes happen on a goroutine of their own: a
// slow connection's close frame may wait behind a stuck write, and the
// room's fan-out must not.
func (c *client) close(d Disconnect) {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.closed = true
		dropped := len(c.queue)
		c.mu.Unlock()
		if dropped > 0 {
			c.g.m.dropped.WithLabelValues("any", "closed").Add(float64(dropped))
		}
		c.g.m.disconnects.WithLabelValues(d.Reason).Inc()
		c.g.logClose(c, d, dropped)
		go func() {
			if d != DisconnectClient {
				// A slow connection's close frame waits behind the write in
				// progress (its socket buffers are full): give the client a
				// few seconds to read its way to it.
				wait := time.Second
				if d == DisconnectSlow {
					wait = min(c.g.cfg.WriteTimeout, 10*time.Second)
				}
				msg := websocket.FormatCloseMessage(d.Code, d.Reason)
				_ = c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(wait))
			}
			_ = c.ws.Close()
		}()
	})
}
