package api

import (
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/onair/onair/ingest"
	"github.com/onair/onair/internal/refusal"
	"github.com/onair/onair/rooms"
)

// CodeFailedPrecondition is the code of a 409: the request is well formed
// but the room's state refuses it (closed, already in a PK).
const CodeFailedPrecondition = "failed_precondition"

// maxRoomBody bounds the JSON bodies of the live-room routes.
const maxRoomBody = 64 << 10

var errRoomBodyTooLarge = &Error{Status: http.StatusRequestEntityTooLarge, Code: CodePayloadTooLarge,
	Message: "request body exceeds " + strconv.Itoa(maxRoomBody) + " bytes"}

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
	v1.POST("/rooms/:id/gifts", h.gift)
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
			WriteError(c, BadRequest("live", "must be true or false"))
			return
		}
	}
	limit, ok := roomsLimit(c, 50, 200)
	if !ok {
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
	room, ok := roomParam(c)
	if !ok {
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
		room, ok := roomParam(c)
		if !ok {
			return
		}
		var in struct {
			AnchorID *uint64 `json:"anchor_id"`
		}
		who := callerOf(c)
		if who.Admin && !decodeBody(c, &in) {
			return
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
	room, ok := roomParam(c)
	if !ok {
		return
	}
	var in struct {
		Text    string `json:"text"`
		EventID string `json:"event_id"`
	}
	if !decodeBody(c, &in) {
		return
	}
	f, err := h.b.Danmaku(c.Request.Context(), room, callerOf(c), in.Text, in.EventID)
	if err != nil {
		WriteError(c, h.fail(c, err))
		return
	}
	c.JSON(http.StatusAccepted, gin.H{"accepted": true, "id": f.ID, "seq": f.Seq})
}

func (h *roomHandlers) gift(c *gin.Context) {
	room, ok := roomParam(c)
	if !ok {
		return
	}
	var in struct {
		GiftID   uint64  `json:"gift_id"`
		Value    uint64  `json:"value"`
		AnchorID *uint64 `json:"anchor_id"`
		EventID  string  `json:"event_id"`
	}
	if !decodeBody(c, &in) || !idInRange(c, "gift_id", in.GiftID) {
		return
	}
	anchor, ok := optionalID(c, "anchor_id", in.AnchorID)
	if !ok {
		return
	}
	f, err := h.b.Gift(c.Request.Context(), room, callerOf(c),
		rooms.GiftInput{GiftID: in.GiftID, Value: in.Value, AnchorID: anchor, EventID: in.EventID})
	if err != nil {
		WriteError(c, h.fail(c, err))
		return
	}
	c.JSON(http.StatusAccepted, gin.H{"accepted": true, "id": f.ID})
}

func (h *roomHandlers) leaderboard(c *gin.Context) {
	room, ok := roomParam(c)
	if !ok {
		return
	}
	limit, ok := roomsLimit(c, 10, 100)
	if !ok {
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
		WriteError(c, BadRequest("biz", "must be one of audio, video, live, article, comic, radio"))
		return
	}
	limit, ok := roomsLimit(c, 10, rooms.PlaysTop)
	if !ok {
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
	if !decodeBody(c, &in) || !idInRange(c, "room_a", in.RoomA) || !idInRange(c, "room_b", in.RoomB) {
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
	if !decodeBody(c, &in) {
		return
	}
	if in.Words == nil { // a missing list must not clear the words
		WriteError(c, BadRequest("words", "is required: the whole list (send [] to clear it)"))
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
func (h *roomHandlers) fail(c *gin.Context, err error) *Error {
	be, refused := refusal.As(err)
	switch {
	case refused:
		e := &Error{Field: be.Field, Message: be.Message, Reason: "rooms"}
		switch be.Kind {
		case refusal.Invalid:
			e.Status, e.Code = http.StatusBadRequest, CodeInvalidArgument
		case refusal.Forbidden:
			e.Status, e.Code = http.StatusForbidden, CodePermissionDenied
		case refusal.NotFound:
			e.Status, e.Code = http.StatusNotFound, CodeNotFound
		case refusal.Conflict:
			e.Status, e.Code = http.StatusConflict, CodeFailedPrecondition
		case refusal.RateLimited:
			e.Status, e.Code, e.Reason = http.StatusTooManyRequests, CodeRateLimited, "danmaku_rate"
			e.RetryAfter = int((be.RetryAfterMs + 999) / 1000)
		}
		return e
	case errors.Is(err, rooms.ErrUnavailable):
		return Unavailable("rooms_unavailable", "Redis or Kafka did not answer; retry with the same event_id")
	}
	h.s.log.Error("rooms: unexpected error", "route", c.FullPath(), "err", err)
	return Internal("rooms_failed")
}

func callerOf(c *gin.Context) rooms.Caller {
	cl, _ := ClaimsFrom(c)
	return rooms.Caller{UserID: cl.UserID, Admin: cl.Role == RoleAdmin}
}

func roomParam(c *gin.Context) (uint64, bool) {
	id, err := strconv.ParseUint(c.Param("id"), 10, 64)
	if err != nil || id == 0 || id > math.MaxInt64 {
		WriteError(c, BadRequest("id", "room id must be an integer in 1..%d", int64(math.MaxInt64)))
		return 0, false
	}
	return id, true
}

// idInRange refuses an id in a body above 2^63-1 (api.md: ids are
// 1..2^63-1; board refuses 0 itself, as "required").
func idInRange(c *gin.Context, field string, id uint64) bool {
	if id > math.MaxInt64 {
		WriteError(c, BadRequest(field, "must be an integer in 1..%d", int64(math.MaxInt64)))
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
		WriteError(c, BadRequest(field, "must be an integer in 1..%d; omit it instead of 0", int64(math.MaxInt64)))
		return 0, false
	}
	return *id, idInRange(c, field, *id)
}

// roomsLimit reads ?limit= in 1..most, def when absent.
func roomsLimit(c *gin.Context, def, most int) (int, bool) {
	v := c.Query("limit")
	if v == "" {
		return def, true
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > most {
		WriteError(c, BadRequest("limit", "must be an integer in 1..%d", most))
		return 0, false
	}
	return n, true
}

// decodeBody decodes a JSON object body into v; an empty body leaves v
// zero. A field of the wrong type is a 400 naming it.
func decodeBody(c *gin.Context, v any) bool {
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, maxRoomBody))
	if err != nil {
		WriteError(c, errRoomBodyTooLarge)
		return false
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		return true
	}
	if err := json.Unmarshal(body, v); err != nil {
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &te) && te.Field == "":
			WriteError(c, BadRequest("", "body must be a JSON object, got %s", te.Value))
		case te != nil:
			WriteError(c, BadRequest(te.Field, "must be a %s", te.Type.String()))
		default:
			WriteError(c, BadRequest("", "body is not a JSON object: %v", err))
		}
		return false
	}
	return true
}
