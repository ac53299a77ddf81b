package api

import (
	"encoding/json"
	"testing"

	"github.com/onair/onair/internal/refusal"
)

// TestDevLogin: api.md's dev sign-in: sms-code answers the fixed code,
// login with it returns a token that /v1 accepts and a user id that is the
// same for the same phone on every sign-in; a wrong code is 401 naming
// "code", a malformed phone 400 naming "phone"; without Config.DevLogin the
// routes do not exist.
func TestDevLogin(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) { c.DevLogin = true })
	r := e.post("/v1/auth/sms-code", "", `{"phone":"13800000000"}`)
	if r.status != 200 || r.body != `{"dev_code":"1000","sent":true}` {
		t.Fatalf("sms-code: %d %s", r.status, r.body)
	}
	login := func(phone string) (string, uint64) {
		t.Helper()
		r := e.post("/v1/auth/login", "", `{"phone":"`+phone+`","code":"1000"}`)
		var b struct {
			Token  string `json:"token"`
			UserID uint64 `json:"user_id"`
		}
		if r.status != 200 || json.Unmarshal([]byte(r.body), &b) != nil || b.Token == "" || b.UserID == 0 {
			t.Fatalf("login %s: %d %s", phone, r.status, r.body)
		}
		return b.Token, b.UserID
	}
	tok, uid := login("13800000000")
	_, again := login("+13800000000")
	_, other := login("13900000001")
	if uid != again || uid == other {
		t.Fatalf("user ids %d, %d (same phone), %d (another): want stable per phone, distinct across", uid, again, other)
	}
	cl, err := ParseToken(testSecret, tok)
	if err != nil || cl.UserID != uid || cl.Role != "" {
		t.Fatalf("token claims %+v %v, want user %d without a role", cl, err, uid)
	}
	if r := e.get("/v1/history", tok); r.status != 200 {
		t.Fatalf("GET /v1/history with the dev token: %d %s", r.status, r.body)
	}

	wantError(t, e.post("/v1/auth/login", "", `{"phone":"13800000000","code":"1234"}`), 401, refusal.CodeUnauthenticated, "code")
	for _, bad := range []string{`{"phone":"12ab5678"}`, `{"phone":"123"}`, `{"phone":"0123456789"}`, `{}`} {
		wantError(t, e.post("/v1/auth/sms-code", "", bad), 400, refusal.CodeInvalidArgument, "phone")
		wantError(t, e.post("/v1/auth/login", "", bad), 400, refusal.CodeInvalidArgument, "phone")
	}
	wantError(t, e.post("/v1/auth/login", "", `not json`), 400, refusal.CodeInvalidArgument, "")

	off := newEnv(t, nil)
	if r := off.post("/v1/auth/login", "", `{"phone":"13800000000","code":"1000"}`); r.status != 404 {
		t.Fatalf("login without DevLogin: %d %s, want no such route", r.status, r.body)
	}
}
