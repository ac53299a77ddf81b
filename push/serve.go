package push

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/onair/onair/internal/refusal"
)

// ServeWS upgrades GET /v1/ws?room=<id>[&since=<seq>] for user, whose token
// the caller has verified (the api server's /v1 middleware does it at
// upgrade, from the Authorization header or ?token=). Refusals are JSON
// errors in api.md's shape before any upgrade: 400 naming the field, 403
// for a foreign origin, 404 for a room never opened, 503 while shutting
// down.
func (g *Gateway) ServeWS(w http.ResponseWriter, r *http.Request, user uint64) {
	if g.conns.isClosing() {
		g.refuse(w, &refusal.Error{Kind: refusal.Unavailable, Reason: "shutting_down", Message: "this node is shutting down; reconnect"})
		return
	}
	if g.conns.full() {
		g.refuseFull(w)
		return
	}
	q := r.URL.Query()
	if !q.Has("room") {
		g.servePersonal(w, r, user)
		return
	}
	roomID, err := strconv.ParseUint(q.Get("room"), 10, 64)
	if err != nil || roomID == 0 {
		g.refuse(w, &refusal.Error{Kind: refusal.Invalid, Reason: "bad_request", Field: "room", Message: "room must be a positive integer room id"})
		return
	}
	since := int64(-1)
	if s := q.Get("since"); s != "" {
		if since, err = strconv.ParseInt(s, 10, 64); err != nil || since < 0 {
			g.refuse(w, &refusal.Error{Kind: refusal.Invalid, Reason: "bad_request", Field: "since", Message: "since must be a non-negative seq"})
			return
		}
	}
	if !g.originAllowed(r) {
		g.refuse(w, &refusal.Error{Kind: refusal.Forbidden, Reason: "origin", Field: "Origin", Message: "origin " + r.Header.Get("Origin") + " is not allowed"})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	ok, err := g.roomExists(ctx, roomID)
	cancel()
	if err != nil {
		g.log.Warn("push: cannot check room", "room", roomID, "err", err)
		g.refuse(w, &refusal.Error{Kind: refusal.Unavailable, Reason: "redis", Message: "room registry unavailable; retry"})
		return
	}
	if !ok {
		g.refuse(w, &refusal.Error{Kind: refusal.NotFound, Reason: "not_found", Field: "room", Message: "room " + strconv.FormatUint(roomID, 10) + " not found"})
		return
	}
	slot, ok := g.admitUser(w, r, user) // 429 naming "user" (limits.go)
	if !ok {
		return
	}
	if !g.conns.reserve() { // the last slot went to a concurrent upgrade
		g.releaseUser(user, slot)
		g.refuseFull(w)
		return
	}
	ws, err := g.upgrader.Upgrade(w, r, nil)
	if err != nil { // the upgrader has answered (400 and its reason)
		g.conns.unreserve()
		g.releaseUser(user, slot)
		g.m.upgrades.WithLabelValues("failed").Inc()
		g.log.Info("push: upgrade failed", "room", roomID, "err", err)
		return
	}
	ws.SetReadLimit(g.cfg.ReadLimit)
	c := &client{g: g, ws: ws, user: user, slot: slot, room: g.hub.acquire(roomID)}
	if !g.conns.add(c) { // shutdown began during the upgrade
		g.releaseUser(user, slot)
		g.hub.release(c.room)
		g.m.upgrades.WithLabelValues("shutting_down").Inc()
		c.close(DisconnectShutdown)
		return
	}
	g.m.upgrades.WithLabelValues("ok").Inc()
	g.m.conns.Inc()
	g.personal.add(c)
	g.ensureLoaded(c.room, user)
	c.room.join(c, since)
	go c.readLoop()
}

// leave is the end of every accepted connection (its reader's last step).
func (g *Gateway) leave(c *client) {
	g.personal.remove(c)
	if c.room == nil {
		g.releaseUser(c.user, c.slot)
		g.conns.remove(c)
		g.m.conns.Dec()
		return
	}
	if c.room.leave(c) { // the user's last connection here: out of the head-count
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		if err := g.online.remove(ctx, c.room.id, c.user); err != nil { // it expires
			g.m.errors.WithLabelValues("online").Inc()
			g.log.Warn("push: cannot remove a viewer from the head-count", "room", c.room.id, "err", err)
		}
		cancel()
	}
	g.hub.release(c.room)
	g.releaseUser(c.user, c.slot)
	g.conns.remove(c)
	g.m.conns.Dec()
}

// servePersonal upgrades GET /v1/ws without room: a connection that gets
// only the user's personal frames (and answers pings).
func (g *Gateway) servePersonal(w http.ResponseWriter, r *http.Request, user uint64) {
	if !g.originAllowed(r) {
		g.refuse(w, &refusal.Error{Kind: refusal.Forbidden, Reason: "origin", Field: "Origin", Message: "origin " + r.Header.Get("Origin") + " is not allowed"})
		return
	}
	slot, ok := g.admitUser(w, r, user) // 429 naming "user" (limits.go)
	if !ok {
		return
	}
	if !g.conns.reserve() {
		g.releaseUser(user, slot)
		g.refuseFull(w)
		return
	}
	ws, err := g.upgrader.Upgrade(w, r, nil)
	if err != nil {
		g.conns.unreserve()
		g.releaseUser(user, slot)
		g.m.upgrades.WithLabelValues("failed").Inc()
		g.log.Info("push: upgrade failed", "room", 0, "err", err)
		return
	}
	ws.SetReadLimit(g.cfg.ReadLimit)
	c := &client{g: g, ws: ws, user: user, slot: slot}
	if !g.conns.add(c) {
		g.releaseUser(user, slot)
		g.m.upgrades.WithLabelValues("shutting_down").Inc()
		c.close(DisconnectShutdown)
		return
	}
	g.m.upgrades.WithLabelValues("ok").Inc()
	g.m.conns.Inc()
	g.personal.add(c)
	go c.readLoop()
}

// originAllowed: no Origin (an app, not a browser), the request's own host,
// or an allowed origin.
func (g *Gateway) originAllowed(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err == nil && strings.EqualFold(u.Host, r.Host) {
		return true
	}
	for _, a := range g.cfg.AllowedOrigins {
		if a == "*" || strings.EqualFold(a, origin) {
			return true
		}
	}
	return false
}

// refuseFull answers an upgrade beyond MaxConns.
func (g *Gateway) refuseFull(w http.ResponseWriter) {
	g.refuse(w, &refusal.Error{Kind: refusal.Unavailable, Reason: "full",
		Message: "this node holds its maximum of connections; retry (another node may answer)"})
}

// refuse answers a refused upgrade with the one JSON error writer the API
// routes use (refusal.Write), and counts it under e.Reason in
// onair_push_upgrades_total{result}.
func (g *Gateway) refuse(w http.ResponseWriter, e *refusal.Error) {
	g.m.upgrades.WithLabelValues(e.Label()).Inc()
	refusal.Write(w, e)
}
