package api

import (
	"errors"
	"math"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/onair/onair/ingest"
	"github.com/onair/onair/internal/refusal"
	"github.com/onair/onair/rooms"
)

// MountRooms adds the live-room routes of api.md ("Leaderboards and live
// rooms" and "Accounts, anchors and rooms", without the WebSocket): reg
// (PostgreSQL, the system of record) for anchors, rooms and PKs, b (the
// hot copy in Redis) for danmaku, gifts, the room ranking, play
// leaderboards and the admin blocked-words list.
func MountRooms(s *Server, b *rooms.Board, reg *rooms.Registry) {
	h := &roomHandlers{s: s, b: b, reg: reg}
	v1 := s.V1()
	v1.POST("/anchor/apply", h.apply)
	s.Admin().GET("/anchors", h.anchors)
	s.Admin().POST("/anchors/:user_id/approve", h.decide(true))
	s.Admin().POST("/anchors/:user_id/revoke", h.decide(false))
	v1.POST("/rooms", h.create)
	v1.GET("/rooms", h.list)
	v1.GET("/rooms/:id", h.get)
	v1.POST("/rooms/:id/open", h.setStatus(true))
	v1.POST("/rooms/:id/close", h.setStatus(false))
	v1.POST("/rooms/:id/danmaku", h.danmaku)
	v1.GET("/rooms/:id/leaderboard", h.leaderboard)
	v1.GET("/leaderboards/plays", h.plays)
	v1.POST("/pk", h.invitePK)
	v1.GET("/pk", h.livePKs)
	v1.GET("/pk/:id", h.getPK)
	v1.POST("/pk/:id/accept", h.answerPK(true))
	v1.POST("/pk/:id/decline", h.answerPK(false))
	s.Admin().GET("/blocked-words", h.getWords)
	s.Admin().PUT("/blocked-words", h.putWords)
}

type roomHandlers struct {
	s   *Server
	b   *rooms.Board
	reg *rooms.Registry
}

// apply is POST /v1/anchor/apply {"reason"} → 202 the application.
func (h *roomHandlers) apply(c *gin.Context) {
	var in struct {
		Reason string `json:"reason"`
	}
	if e := decodeJSON(c, &in, roomBody); e != nil {
		WriteError(c, e)
		return
	}
	a, err := h.reg.Apply(c.Request.Context(), callerOf(c).UserID, in.Reason)
	if err != nil {
		WriteError(c, h.fail(c, err))
		return
	}
	c.JSON(http.StatusAccepted, a)
}

// anchors is GET /v1/admin/anchors?status=pending&limit=50&cursor=.
func (h *roomHandlers) anchors(c *gin.Context) {
	q := c.Request.URL.Query()
	status, e := single(q, "status")
	if e != nil {
		WriteError(c, e)
		return
	}
	if status == "" {
		status = rooms.AnchorPending
	}
	limit, e := queryInt(q, "limit", 50, 1, 200)
	if e != nil {
		WriteError(c, e)
		return
	}
	cursor, e := single(q, "cursor")
	if e != nil {
		WriteError(c, e)
		return
	}
	items, next, err := h.reg.Anchors(c.Request.Context(), status, limit, cursor)
	if err != nil {
		WriteError(c, h.fail(c, err))
		return
	}
	c.JSON(http.StatusOK, gin.H{"items": items, "next_cursor": next})
}

// decide is POST /v1/admin/anchors/{user_id}/approve|revoke.
func (h *roomHandlers) decide(approve bool) gin.HandlerFunc {
	return func(c *gin.Context) {
		uid, e := pathID(c, "user_id")
		if e != nil {
			WriteError(c, e)
			return
		}
		var a rooms.Anchor
		var err error
		if approve {
			a, err = h.reg.Approve(c.Request.Context(), callerOf(c), uid)
		} else {
			a, err = h.reg.Revoke(c.Request.Context(), callerOf(c), uid)
		}
		if err != nil {
			WriteError(c, h.fail(c, err))
			return
		}
		c.JSON(http.StatusOK, a)
	}
}

// create is POST /v1/rooms {"title","category","cover_url"}: 201 the
// anchor's new room, 200 the room they had.
func (h *roomHandlers) create(c *gin.Context) {
	var in struct {
		Title    string `json:"title"`
		Category string `json:"category"`
		CoverURL string `json:"cover_url"`
	}
	if e := decodeJSON(c, &in, roomBody); e != nil {
		WriteError(c, e)
		return
	}
	r, created, err := h.reg.CreateRoom(c.Request.Context(), callerOf(c), rooms.RoomInput{Title: in.Title, Category: in.Category, CoverURL: in.CoverURL})
	if err != nil {
		WriteError(c, h.fail(c, err))
		return
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	c.JSON(status, r)
}

func (h *roomHandlers) list(c *gin.Context) {
	q := c.Request.URL.Query()
	live := false
	if v := c.Query("live"); v != "" {
		var err error
		if live, err = strconv.ParseBool(v); err != nil {
			WriteError(c, refusal.Invalidf("live", "must be true or false"))
			return
		}
	}
	limit, e := queryInt(q, "limit", 20, 1, 200)
	if e != nil {
		WriteError(c, e)
		return
	}
	cursor, e := single(q, "cursor")
	if e != nil {
		WriteError(c, e)
		return
	}
	list, next, err := h.reg.ListRooms(c.Request.Context(), callerOf(c), live, limit, cursor)
	if err != nil {
		WriteError(c, h.fail(c, err))
		return
	}
	c.JSON(http.StatusOK, gin.H{"items": list, "next_cursor": next})
}

func (h *roomHandlers) get(c *gin.Context) {
	room, e := pathID(c, "id")
	if e != nil {
		WriteError(c, e)
		return
	}
	r, err := h.reg.GetRoom(c.Request.Context(), callerOf(c), room)
	if err != nil {
		WriteError(c, h.fail(c, err))
		return
	}
	c.JSON(http.StatusOK, r)
}

// setStatus is POST /v1/rooms/{id}/open|close (its anchor or an admin).
func (h *roomHandlers) setStatus(open bool) gin.HandlerFunc {
	return func(c *gin.Context) {
		room, e := pathID(c, "id")
		if e != nil {
			WriteError(c, e)
			return
		}
		r, err := h.reg.SetOpen(c.Request.Context(), room, open, callerOf(c))
		if err != nil {
			WriteError(c, h.fail(c, err))
			return
		}
		c.JSON(http.StatusOK, r)
	}
}

func (h *roomHandlers) danmaku(c *gin.Context) {
	room, e := pathID(c, "id")
	if e != nil {
		WriteError(c, e)
		return
	}
	var in struct {
		Text    string `json:"text"`
		EventID string `json:"event_id"`
	}
	if e := decodeJSON(c, &in, roomBody); e != nil {
		WriteError(c, e)
		return
	}
	f, err := h.b.Danmaku(c.Request.Context(), room, callerOf(c), in.Text, in.EventID)
	if err != nil {
		WriteError(c, h.fail(c, err))
		return
	}
	c.JSON(http.StatusAccepted, gin.H{"accepted": true, "id": f.ID, "seq": f.Seq})
}

func (h *roomHandlers) leaderboard(c *gin.Context) {
	room, e := pathID(c, "id")
	if e != nil {
		WriteError(c, e)
		return
	}
	limit, e := queryInt(c.Request.URL.Query(), "limit", 10, 1, 100)
	if e != nil {
		WriteError(c, e)
		return
	}
	items, ver, err := h.b.Leaderboard(c.Request.Context(), room, limit)
	if err != nil {
		WriteError(c, h.fail(c, err))
		return
	}
	c.JSON(http.StatusOK, gin.H{"items": items, "version": ver})
}

func (h *roomHandlers) plays(c *gin.Context) {
	biz, ok := ingest.ParseBiz(c.Query("biz"))
	if !ok {
		WriteError(c, refusal.Invalidf("biz", "must be one of audio, video, live, article, comic, radio"))
		return
	}
	limit, e := queryInt(c.Request.URL.Query(), "limit", 10, 1, rooms.PlaysTop)
	if e != nil {
		WriteError(c, e)
		return
	}
	items, err := h.b.Plays(c.Request.Context(), biz, c.Query("window"), limit)
	if err != nil {
		WriteError(c, h.fail(c, err))
		return
	}
	c.JSON(http.StatusOK, gin.H{"items": items})
}

// invitePK is POST /v1/pk {"room_a","room_b"} → 201 an invitation.
func (h *roomHandlers) invitePK(c *gin.Context) {
	var in struct {
		RoomA uint64 `json:"room_a"`
		RoomB uint64 `json:"room_b"`
	}
	if e := decodeJSON(c, &in, roomBody); e != nil {
		WriteError(c, e)
		return
	}
	if !idInRange(c, "room_a", in.RoomA) || !idInRange(c, "room_b", in.RoomB) {
		return
	}
	p, err := h.reg.InvitePK(c.Request.Context(), callerOf(c), in.RoomA, in.RoomB)
	if err != nil {
		WriteError(c, h.fail(c, err))
		return
	}
	c.JSON(http.StatusCreated, p)
}

// answerPK is POST /v1/pk/{id}/accept|decline (room_b's anchor).
func (h *roomHandlers) answerPK(accept bool) gin.HandlerFunc {
	return func(c *gin.Context) {
		id, e := pkID(c)
		if e != nil {
			WriteError(c, e)
			return
		}
		p, err := h.reg.AnswerPK(c.Request.Context(), callerOf(c), id, accept)
		if err != nil {
			WriteError(c, h.fail(c, err))
			return
		}
		c.JSON(http.StatusOK, p)
	}
}

func (h *roomHandlers) getPK(c *gin.Context) {
	id, e := pkID(c)
	if e != nil {
		WriteError(c, e)
		return
	}
	p, err := h.reg.GetPK(c.Request.Context(), id)
	if err != nil {
		WriteError(c, h.fail(c, err))
		return
	}
	c.JSON(http.StatusOK, p)
}

// livePKs is GET /v1/pk?live=true&limit=50: the running PKs.
func (h *roomHandlers) livePKs(c *gin.Context) {
	q := c.Request.URL.Query()
	live, e := single(q, "live")
	if e != nil {
		WriteError(c, e)
		return
	}
	if ok, err := strconv.ParseBool(live); err != nil || !ok {
		WriteError(c, refusal.Invalidf("live", "must be true: only running PKs are listed"))
		return
	}
	limit, e := queryInt(q, "limit", 50, 1, 200)
	if e != nil {
		WriteError(c, e)
		return
	}
	items, err := h.reg.LivePKs(c.Request.Context(), limit)
	if err != nil {
		WriteError(c, h.fail(c, err))
		return
	}
	c.JSON(http.StatusOK, gin.H{"items": items})
}

// pkID reads the path's PK id ("<room_a>-<room_b>-<ms>").
func pkID(c *gin.Context) (string, *refusal.Error) {
	id := c.Param("id")
	if !rooms.ParsePKID(id) {
		return "", refusal.Invalidf("id", "id must be a PK id as POST /v1/pk returned it, got %q", id)
	}
	return id, nil
}

func (h *roomHandlers) getWords(c *gin.Context) {
	ws, err := h.b.BlockedWords(c.Request.Context())
	if err != nil {
		WriteError(c, h.fail(c, err))
		return
	}
	c.JSON(http.StatusOK, gin.H{"words": ws})
}

func (h *roomHandlers) putWords(c *gin.Context) {
	var in struct {
		Words *[]string `json:"words"`
	}
	if e := decodeJSON(c, &in, roomBody); e != nil {
		WriteError(c, e)
		return
	}
	if in.Words == nil { // a missing list must not clear the words
		WriteError(c, refusal.Invalidf("words", "is required: the whole list (send [] to clear it)"))
		return
	}
	ws, err := h.b.SetBlockedWords(c.Request.Context(), *in.Words)
	if err != nil {
		WriteError(c, h.fail(c, err))
		return
	}
	c.JSON(http.StatusOK, gin.H{"words": ws})
}

// fail maps rooms' errors to API errors; anything unexpected is logged
// and is a 500.
func (h *roomHandlers) fail(c *gin.Context, err error) *refusal.Error {
	switch be, refused := refusal.As(err); {
	case refused:
		e := *be // rooms' refusal, labelled for onair_api_errors_total
		if e.Reason == "" {
			e.Reason = "rooms"
			if e.Kind == refusal.RateLimited {
				e.Reason = "danmaku_rate"
			}
		}
		return &e
	case errors.Is(err, rooms.ErrUnavailable):
		return refusal.UnavailableFor("rooms_unavailable", "Redis or Kafka did not answer; retry with the same event_id")
	}
	h.s.log.Error("rooms: unexpected error", "route", c.FullPath(), "err", err)
	return refusal.InternalFor("rooms_failed")
}

func callerOf(c *gin.Context) rooms.Caller {
	cl, _ := ClaimsFrom(c)
	return rooms.Caller{UserID: cl.UserID, Admin: cl.Role == RoleAdmin}
}

// idInRange refuses an id in a body above 2^63-1 (api.md: ids are
// 1..2^63-1; board refuses 0 itself, as "required").
func idInRange(c *gin.Context, field string, id uint64) bool {
	if id > math.MaxInt64 {
		WriteError(c, refusal.Invalidf(field, "must be an integer in 1..%d", int64(math.MaxInt64)))
		return false
	}
	return true
}
