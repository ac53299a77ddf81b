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
// rooms", without the WebSocket) backed by b: rooms, danmaku, gifts, the
// room ranking, play leaderboards, PK and the admin blocked-words list.
func MountRooms(s *Server, b *rooms.Board) {
	h := &roomHandlers{s: s, b: b}
	v1 := s.V1()
	v1.GET("/rooms", h.list)
	v1.GET("/rooms/:id", h.get)
	v1.POST("/rooms/:id/open", h.setStatus(true))
	v1.POST("/rooms/:id/close", h.setStatus(false))
	v1.POST("/rooms/:id/danmaku", h.danmaku)
	v1.GET("/rooms/:id/leaderboard", h.leaderboard)
	v1.GET("/leaderboards/plays", h.plays)
	v1.POST("/pk", h.startPK)
	v1.GET("/pk/:id", h.getPK)
	s.Admin().GET("/blocked-words", h.getWords)
	s.Admin().PUT("/blocked-words", h.putWords)
}

type roomHandlers struct {
	s *Server
	b *rooms.Board
}

func (h *roomHandlers) list(c *gin.Context) {
	live := false
	if v := c.Query("live"); v != "" {
		var err error
		if live, err = strconv.ParseBool(v); err != nil {
			WriteError(c, refusal.Invalidf("live", "must be true or false"))
			return
		}
	}
	limit, e := queryInt(c.Request.URL.Query(), "limit", 50, 1, 200)
	if e != nil {
		WriteError(c, e)
		return
	}
	list, err := h.b.List(c.Request.Context(), live, limit)
	if err != nil {
		WriteError(c, h.fail(c, err))
		return
	}
	c.JSON(http.StatusOK, gin.H{"items": list})
}

func (h *roomHandlers) get(c *gin.Context) {
	room, e := pathID(c, "id")
	if e != nil {
		WriteError(c, e)
		return
	}
	r, err := h.b.GetRoom(c.Request.Context(), room)
	if err != nil {
		WriteError(c, h.fail(c, err))
		return
	}
	c.JSON(http.StatusOK, r)
}

// setStatus is POST /v1/rooms/{id}/open|close. An admin may name the
// anchor: {"anchor_id": 8}; anyone else's body is ignored.
func (h *roomHandlers) setStatus(open bool) gin.HandlerFunc {
	return func(c *gin.Context) {
		room, e := pathID(c, "id")
		if e != nil {
			WriteError(c, e)
			return
		}
		var in struct {
			AnchorID *uint64 `json:"anchor_id"`
		}
		who := callerOf(c)
		if who.Admin {
			if e := decodeJSON(c, &in, roomBody); e != nil {
				WriteError(c, e)
				return
			}
		}
		anchor, ok := optionalID(c, "anchor_id", in.AnchorID)
		if !ok {
			return
		}
		r, err := h.b.SetRoom(c.Request.Context(), room, open, who, anchor)
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

func (h *roomHandlers) startPK(c *gin.Context) {
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
	f, err := h.b.StartPK(c.Request.Context(), callerOf(c), in.RoomA, in.RoomB)
	if err != nil {
		WriteError(c, h.fail(c, err))
		return
	}
	c.JSON(http.StatusCreated, f)
}

func (h *roomHandlers) getPK(c *gin.Context) {
	f, err := h.b.PK(c.Request.Context(), c.Param("id"))
	if err != nil {
		WriteError(c, h.fail(c, err))
		return
	}
	c.JSON(http.StatusOK, f)
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

// optionalID reads an optional id of a body: absent or null is 0 (board's
// "none"); an explicit 0 or one above 2^63-1 is refused, naming field.
func optionalID(c *gin.Context, field string, id *uint64) (uint64, bool) {
	switch {
	case id == nil:
		return 0, true
	case *id == 0:
		WriteError(c, refusal.Invalidf(field, "must be an integer in 1..%d; omit it instead of 0", int64(math.MaxInt64)))
		return 0, false
	}
	return *id, idInRange(c, field, *id)
}
