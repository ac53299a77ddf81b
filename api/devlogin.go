package api

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/onair/onair/internal/refusal"
)

// Dev sign-in (api.md "Auth"), for the browser pages: modeled on an SMS
// flow whose code is always DevLoginCode and whose SMS is never sent. On in
// `onair dev`, off in `onair serve` unless --dev-login (Config.DevLogin).
// The routes sit outside /v1's token check: they are how a token is got.
const (
	// DevLoginCode is the only code POST /v1/auth/login accepts.
	DevLoginCode = "1000"
	// DevTokenTTL is how long a dev sign-in token is valid.
	DevTokenTTL = 24 * time.Hour
)

func (s *Server) mountDevLogin() {
	s.engine.POST("/v1/auth/sms-code", s.postSMSCode)
	s.engine.POST("/v1/auth/login", s.postLogin)
}

type devLoginBody struct {
	Phone string `json:"phone"`
	Code  string `json:"code"`
}

// postSMSCode is POST /v1/auth/sms-code {"phone": "13800000000"} →
// {"sent": true, "dev_code": "1000"}.
func (s *Server) postSMSCode(c *gin.Context) {
	var b devLoginBody
	if e := decodeDevLogin(c, &b); e != nil {
		WriteError(c, e)
		return
	}
	if _, e := devUserID(b.Phone); e != nil {
		WriteError(c, e)
		return
	}
	c.JSON(http.StatusOK, gin.H{"sent": true, "dev_code": DevLoginCode})
}

// postLogin is POST /v1/auth/login {"phone": "...", "code": "1000"} →
// {"token": "...", "user_id": 13800000000}.
func (s *Server) postLogin(c *gin.Context) {
	var b devLoginBody
	if e := decodeDevLogin(c, &b); e != nil {
		WriteError(c, e)
		return
	}
	uid, e := devUserID(b.Phone)
	if e != nil {
		WriteError(c, e)
		return
	}
	if b.Code != DevLoginCode {
		WriteError(c, &refusal.Error{Kind: refusal.Unauthenticated, Field: "code",
			Message: "wrong code (the dev sign-in code is " + DevLoginCode + ")", Reason: "bad_code"})
		return
	}
	tok, err := SignToken(s.cfg.AuthSecret, uid, "", DevTokenTTL)
	if err != nil {
		s.log.Error("api: cannot sign a dev token", "user", uid, "err", err)
		WriteError(c, refusal.InternalFor("sign_token"))
		return
	}
	c.JSON(http.StatusOK, gin.H{"token": tok, "user_id": uid})
}

func decodeDevLogin(c *gin.Context, b *devLoginBody) *refusal.Error {
	body, err := io.ReadAll(io.LimitReader(c.Request.Body, 4096))
	if err != nil {
		return refusal.Invalidf("", "cannot read body: %v", err)
	}
	if err := json.Unmarshal(body, b); err != nil {
		return refusal.Invalidf("", "body must be a JSON object: %v", err)
	}
	return nil
}

// devUserID is the stable user id of a phone: its digits as a number, so
// the same phone gets the same id on every node and after every restart
// with no state kept. A phone is an optional "+" and 6 to 15 digits (E.164),
// the first not 0; 15 digits stay below 2^53, safe in JavaScript.
func devUserID(phone string) (uint64, *refusal.Error) {
	d := strings.TrimPrefix(phone, "+")
	if len(d) < 6 || len(d) > 15 || d[0] == '0' {
		return 0, refusal.Invalidf("phone", "phone must be 6 to 15 digits, optionally after +, not starting with 0")
	}
	for i := 0; i < len(d); i++ {
		if d[i] < '0' || d[i] > '9' {
			return 0, refusal.Invalidf("phone", "phone must contain digits only")
		}
	}
	uid, err := strconv.ParseUint(d, 10, 64)
	if err != nil {
		return 0, refusal.Invalidf("phone", "phone is not a number")
	}
	return uid, nil
}
