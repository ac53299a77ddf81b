package api

import (
	"context"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/onair/onair/accounts"
	"github.com/onair/onair/internal/refusal"
)

// AnchorInfo says whether a user is an approved anchor and which room is
// theirs (0 = none yet). The anchors' owner (rooms in PostgreSQL)
// implements it; GET /v1/me and GET /v1/users/{id} show it.
type AnchorInfo interface {
	AnchorOf(ctx context.Context, userID uint64) (isAnchor bool, roomID uint64, err error)
}

// AccountsDeps are what the account routes need.
type AccountsDeps struct {
	// Accounts is the users' service. nil = the routes answer 503 after
	// checking their input (a node mounting routes only).
	Accounts *accounts.Service
	// Anchors fills is_anchor and room_id; nil = never an anchor.
	Anchors AnchorInfo
	// Words are the blocked words nicknames obey (*rooms.Board); nil =
	// none.
	Words accounts.BlockedWords
}

// MountAccounts adds api.md's sign-in ("Auth") and profile routes
// ("Accounts, anchors and rooms"): POST /v1/auth/sms-code, /v1/auth/login
// and /v1/auth/refresh outside the token check (they are how a token is
// got), POST /v1/auth/logout, GET and PATCH /v1/me, GET /v1/users/{id}
// with it.
func MountAccounts(s *Server, d AccountsDeps) {
	h := &accountHandlers{s: s, d: d}
	s.engine.POST("/v1/auth/sms-code", h.smsCode)
	s.engine.POST("/v1/auth/login", h.login)
	s.engine.POST("/v1/auth/refresh", h.refresh)
	v1 := s.V1()
	v1.POST("/auth/logout", h.logout)
	v1.GET("/me", h.me)
	v1.PATCH("/me", h.patchMe)
	v1.GET("/users/:id", h.user)
}

type accountHandlers struct {
	s *Server
	d AccountsDeps
}

// authBody: the sign-in routes' small bodies.
var authBody = bodyRule{max: 4096, emptyIsZero: true}

type authIn struct {
	Phone        string `json:"phone"`
	Code         string `json:"code"`
	RefreshToken string `json:"refresh_token"`
}

// read decodes the body and checks that the service is there.
func (h *accountHandlers) read(c *gin.Context, in any) bool {
	if e := decodeJSON(c, in, authBody); e != nil {
		WriteError(c, e)
		return false
	}
	return true
}

func (h *accountHandlers) service(c *gin.Context) bool {
	if h.d.Accounts == nil {
		WriteError(c, refusal.UnavailableFor("no_accounts", "accounts are not served by this node"))
		return false
	}
	return true
}

// fail answers a service error: its refusal, or a 500 for anything else.
func (h *accountHandlers) fail(c *gin.Context, err error) {
	if e, ok := refusal.As(err); ok {
		WriteError(c, e)
		return
	}
	h.s.log.Error("api: accounts failed", "route", c.FullPath(), "err", err)
	WriteError(c, refusal.InternalFor("accounts"))
}

// smsCode is POST /v1/auth/sms-code {"phone"} → {"sent": true} (and
// "dev_code" with dev sign-in on).
func (h *accountHandlers) smsCode(c *gin.Context) {
	var in authIn
	if !h.read(c, &in) {
		return
	}
	if _, e := accounts.NormalizePhone(in.Phone); e != nil {
		WriteError(c, e)
		return
	}
	if !h.service(c) {
		return
	}
	code, err := h.d.Accounts.SendCode(c.Request.Context(), in.Phone)
	if err != nil {
		h.fail(c, err)
		return
	}
	if code != "" {
		c.JSON(http.StatusOK, gin.H{"sent": true, "dev_code": code})
		return
	}
	c.JSON(http.StatusOK, gin.H{"sent": true})
}

// login is POST /v1/auth/login {"phone", "code"} → {"token",
// "refresh_token", "user_id", "new"}.
func (h *accountHandlers) login(c *gin.Context) {
	var in authIn
	if !h.read(c, &in) {
		return
	}
	if _, e := accounts.NormalizePhone(in.Phone); e != nil {
		WriteError(c, e)
		return
	}
	if in.Code == "" {
		WriteError(c, refusal.Invalidf("code", "code is required"))
		return
	}
	if !h.service(c) {
		return
	}
	sess, err := h.d.Accounts.Login(c.Request.Context(), in.Phone, in.Code)
	if err != nil {
		h.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, sess)
}

// refresh is POST /v1/auth/refresh {"refresh_token"} → a new pair.
func (h *accountHandlers) refresh(c *gin.Context) {
	var in authIn
	if !h.read(c, &in) {
		return
	}
	if in.RefreshToken == "" {
		WriteError(c, refusal.Invalidf("refresh_token", "refresh_token is required"))
		return
	}
	if !h.service(c) {
		return
	}
	sess, err := h.d.Accounts.Refresh(c.Request.Context(), in.RefreshToken)
	if err != nil {
		h.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, sess)
}

// logout is POST /v1/auth/logout {"refresh_token"} → 204, the caller's
// session revoked.
func (h *accountHandlers) logout(c *gin.Context) {
	var in authIn
	if !h.read(c, &in) {
		return
	}
	if in.RefreshToken == "" {
		WriteError(c, refusal.Invalidf("refresh_token", "refresh_token is required"))
		return
	}
	if !h.service(c) {
		return
	}
	cl, _ := ClaimsFrom(c)
	if err := h.d.Accounts.Logout(c.Request.Context(), cl.UserID, in.RefreshToken); err != nil {
		h.fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

// profileOut is a profile as /v1/me and /v1/users/{id} answer it.
type profileOut struct {
	accounts.Profile
	IsAnchor bool   `json:"is_anchor"`
	RoomID   uint64 `json:"room_id,omitempty"`
}

// withAnchor adds what AnchorInfo says. When it fails the profile is
// still answered, without the anchor part (logged, counted as
// anchor_info_failed).
func (h *accountHandlers) withAnchor(c *gin.Context, p accounts.Profile) profileOut {
	out := profileOut{Profile: p}
	if h.d.Anchors == nil {
		return out
	}
	is, room, err := h.d.Anchors.AnchorOf(c.Request.Context(), p.UserID)
	if err != nil {
		h.s.log.Warn("api: cannot tell whether a user is an anchor", "user", p.UserID, "err", err)
		h.s.countDegraded(c, "anchor_info_failed")
		return out
	}
	out.IsAnchor, out.RoomID = is, room
	if !is {
		out.RoomID = 0
	}
	return out
}

// me is GET /v1/me: the caller's profile, phone included.
func (h *accountHandlers) me(c *gin.Context) {
	if !h.service(c) {
		return
	}
	cl, _ := ClaimsFrom(c)
	p, err := h.d.Accounts.Profile(c.Request.Context(), cl.UserID)
	if err != nil {
		h.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, h.withAnchor(c, p))
}

// patchMe is PATCH /v1/me {"nickname", "avatar_url"}: only the caller's
// own profile (there is no route to change another's).
func (h *accountHandlers) patchMe(c *gin.Context) {
	var in accounts.ProfileUpdate
	if e := decodeJSON(c, &in, authBody); e != nil {
		WriteError(c, e)
		return
	}
	if !h.service(c) {
		return
	}
	cl, _ := ClaimsFrom(c)
	p, err := h.d.Accounts.Update(c.Request.Context(), cl.UserID, in, h.d.Words)
	if err != nil {
		h.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, h.withAnchor(c, p))
}

// user is GET /v1/users/{id}: the public part, never the phone.
func (h *accountHandlers) user(c *gin.Context) {
	id, e := pathID(c, "id")
	if e != nil {
		WriteError(c, e)
		return
	}
	if !h.service(c) {
		return
	}
	p, err := h.d.Accounts.Profile(c.Request.Context(), id)
	if err != nil {
		h.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, h.withAnchor(c, p.Public()))
}
