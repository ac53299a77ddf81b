package api

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/onair/onair/accounts"
	"github.com/onair/onair/internal/pgdb/pgtest"
	"github.com/onair/onair/internal/refusal"
	"github.com/onair/onair/internal/testenv"
)

type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *lockedBuf) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// anchors says user 1000001 is the anchor of room 5.
type anchors struct{}

func (anchors) AnchorOf(_ context.Context, uid uint64) (bool, uint64, error) {
	return uid == accounts.DefaultUserIDStart, 5, nil
}

func (e *env) patch(path, tok, body string) reply {
	return e.do("PATCH", path, tok, strings.NewReader(body))
}

// newAccountsEnv is a server with the account routes on a real
// PostgreSQL and Redis, dev codes on, everything logged to log.
func newAccountsEnv(t *testing.T) (*env, *lockedBuf) {
	t.Helper()
	log := &lockedBuf{}
	logger := slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e := newEnv(t, func(c *Config) { c.Log = logger })
	rdb, prefix := testenv.Redis(t)
	svc, err := accounts.New(context.Background(), accounts.Config{DB: pgtest.DB(t), Secret: testSecret, Redis: rdb, Prefix: prefix,
		DevCodes: true, Log: logger})
	if err != nil {
		t.Fatal(err)
	}
	MountAccounts(e.s, AccountsDeps{Accounts: svc, Anchors: anchors{}})
	return e, log
}

type session struct {
	Token        string `json:"token"`
	RefreshToken string `json:"refresh_token"`
	UserID       uint64 `json:"user_id"`
	New          bool   `json:"new"`
}

func (e *env) signIn(t *testing.T, phone string) session {
	t.Helper()
	r := e.post("/v1/auth/sms-code", "", `{"phone":"`+phone+`"}`)
	var c struct {
		DevCode string `json:"dev_code"`
	}
	if r.status != 200 || json.Unmarshal([]byte(r.body), &c) != nil || len(c.DevCode) != 6 {
		t.Fatalf("sms-code: %d %s", r.status, r.body)
	}
	r = e.post("/v1/auth/login", "", `{"phone":"`+phone+`","code":"`+c.DevCode+`"}`)
	var s session
	if r.status != 200 || json.Unmarshal([]byte(r.body), &s) != nil {
		t.Fatalf("login: %d %s", r.status, r.body)
	}
	return s
}

// TestSignInRoutes: api.md "Auth" end to end on real PostgreSQL: the
// code's rules as HTTP answers (429 with Retry-After, 401 code), the
// session, rotation and logout; the phone is in no token, no reply but
// the owner's /v1/me and no log line.
func TestSignInRoutes(t *testing.T) {
	t.Parallel()
	e, log := newAccountsEnv(t)
	wantError(t, e.post("/v1/auth/sms-code", "", `{"phone":"12345"}`), 400, refusal.CodeInvalidArgument, "phone")
	wantError(t, e.post("/v1/auth/sms-code", "", `{}`), 400, refusal.CodeInvalidArgument, "phone")
	wantError(t, e.post("/v1/auth/login", "", `{"phone":"13800000000"}`), 400, refusal.CodeInvalidArgument, "code")
	wantError(t, e.post("/v1/auth/login", "", `{"phone":"13800000000","code":"123456"}`), 401, refusal.CodeUnauthenticated, "code")

	a := e.signIn(t, "13800000000")
	if !a.New || a.UserID != accounts.DefaultUserIDStart || a.RefreshToken == "" {
		t.Fatalf("first sign-in %+v", a)
	}
	r := e.post("/v1/auth/sms-code", "", `{"phone":"+8613800000000"}`)
	wantError(t, r, 429, refusal.CodeRateLimited, "phone")
	if ra, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || ra < 1 || ra > 60 {
		t.Fatalf("Retry-After %q", r.header.Get("Retry-After"))
	}
	payload, _ := base64.RawURLEncoding.DecodeString(strings.Split(a.Token, ".")[1])
	if strings.Contains(string(payload), "3800000000") || !strings.Contains(string(payload), `"sub":"1000001"`) {
		t.Fatalf("token payload %s", payload)
	}

	me := e.get("/v1/me", a.Token)
	var p map[string]any
	if me.status != 200 || json.Unmarshal([]byte(me.body), &p) != nil || p["phone"] != "+8613800000000" || p["is_anchor"] != true || p["room_id"] != 5.0 {
		t.Fatalf("GET /v1/me: %d %s", me.status, me.body)
	}
	b := e.signIn(t, "+14155550100")
	pub := e.get("/v1/users/"+strconv.FormatUint(a.UserID, 10), b.Token)
	if pub.status != 200 || strings.Contains(pub.body, "phone") || strings.Contains(pub.body, "3800000000") {
		t.Fatalf("GET /v1/users/{id} by another: %d %s", pub.status, pub.body)
	}
	wantError(t, e.get("/v1/users/99", b.Token), 404, refusal.CodeNotFound, "id")

	// profiles: refusals name the field; a stranger changes only their own
	wantError(t, e.patch("/v1/me", a.Token, `{"nickname":""}`), 400, refusal.CodeInvalidArgument, "nickname")
	wantError(t, e.patch("/v1/me", a.Token, `{"nickname":"`+strings.Repeat("x", 21)+`"}`), 400, refusal.CodeInvalidArgument, "nickname")
	wantError(t, e.patch("/v1/me", a.Token, `{"avatar_url":"http://x.example/a.png"}`), 400, refusal.CodeInvalidArgument, "avatar_url")
	wantError(t, e.patch("/v1/me", a.Token, `{"nickname":7}`), 400, refusal.CodeInvalidArgument, "nickname")
	if r := e.patch("/v1/me", a.Token, `{"nickname":"Mia"}`); r.status != 200 || !strings.Contains(r.body, `"nickname":"Mia"`) {
		t.Fatalf("PATCH /v1/me: %d %s", r.status, r.body)
	}
	if r := e.patch("/v1/me", b.Token, `{"nickname":"Mallory","user_id":1000001}`); r.status != 200 || !strings.Contains(r.body, `"user_id":1000002`) {
		t.Fatalf("a stranger's PATCH: %d %s", r.status, r.body)
	}
	if r := e.get("/v1/users/1000001", b.Token); !strings.Contains(r.body, `"nickname":"Mia"`) {
		t.Fatalf("the stranger changed another's profile: %s", r.body)
	}
	if r := e.patch("/v1/users/1000001", b.Token, `{"nickname":"Mallory"}`); r.status != 405 {
		t.Fatalf("PATCH /v1/users/{id}: %d, want 405 (no route changes another's profile)", r.status)
	}

	// rotation and logout
	r = e.post("/v1/auth/refresh", "", `{"refresh_token":"`+a.RefreshToken+`"}`)
	var a2 session
	if r.status != 200 || json.Unmarshal([]byte(r.body), &a2) != nil || a2.RefreshToken == a.RefreshToken || a2.UserID != a.UserID {
		t.Fatalf("refresh: %d %s", r.status, r.body)
	}
	wantError(t, e.post("/v1/auth/refresh", "", `{"refresh_token":"`+a.RefreshToken+`"}`), 401, refusal.CodeUnauthenticated, "refresh_token")
	wantError(t, e.post("/v1/auth/refresh", "", `{}`), 400, refusal.CodeInvalidArgument, "refresh_token")
	if r := e.post("/v1/auth/logout", b.Token, `{"refresh_token":"`+b.RefreshToken+`"}`); r.status != 204 {
		t.Fatalf("logout: %d %s", r.status, r.body)
	}
	wantError(t, e.post("/v1/auth/refresh", "", `{"refresh_token":"`+b.RefreshToken+`"}`), 401, refusal.CodeUnauthenticated, "refresh_token")
	wantError(t, e.post("/v1/auth/logout", "", `{"refresh_token":"x"}`), 401, refusal.CodeUnauthenticated, "")

	if l := log.String(); strings.Contains(l, "3800000000") || strings.Contains(l, "4155550100") || !strings.Contains(l, "dev sign-in code") {
		t.Fatalf("the log names a phone (or lacks the dev code line):\n%s", l)
	}
}
