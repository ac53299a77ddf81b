package api

import (
	"encoding/json"
	"net/http"
	"strconv"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/onair/onair/internal/refusal"
	"github.com/onair/onair/internal/testenv"
)

// TestWSTicketSingleUse: POST /v1/ws/ticket hands out a ticket that opens
// the upgrade route once; a second use, an unknown ticket and a ticket on
// another route are refused; ?token= is taken on the upgrade only. Breaks
// tried: GET instead of GETDEL (the second use passed) and today's bearer
// (?token= on every /v1 route: /v1/history answered 200).
func TestWSTicketSingleUse(t *testing.T) {
	rdb, prefix := testenv.Redis(t)
	e := newEnv(t, func(c *Config) { c.Redis, c.RatePrefix = rdb, prefix })
	e.s.V1().POST("/ws/ticket", e.s.postTicket)
	e.s.engine.GET("/v1/ws", e.s.authenticateUpgrade, func(c *gin.Context) {
		cl, _ := ClaimsFrom(c)
		c.String(http.StatusOK, strconv.FormatUint(cl.UserID, 10))
	})
	tok := token(t, 42, "")
	get := func(path string) reply {
		t.Helper()
		resp, err := e.ts.Client().Get(e.ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b := make([]byte, 512)
		n, _ := resp.Body.Read(b)
		return reply{resp.StatusCode, resp.Header, string(b[:n])}
	}
	r := e.do("POST", "/v1/ws/ticket", tok, nil)
	var got struct {
		Ticket    string `json:"ticket"`
		ExpiresIn int    `json:"expires_in"`
	}
	if r.status != 200 || jsonInto(r.body, &got) != nil || got.Ticket == "" || got.ExpiresIn != 30 {
		t.Fatalf("ticket: %d %s", r.status, r.body)
	}
	if r := get("/v1/ws?ticket=" + got.Ticket); r.status != 200 || r.body != "42" {
		t.Fatalf("first use: %d %s", r.status, r.body)
	}
	wantError(t, get("/v1/ws?ticket="+got.Ticket), 401, refusal.CodeUnauthenticated, "ticket")
	wantError(t, get("/v1/ws?ticket=nope"), 401, refusal.CodeUnauthenticated, "ticket")
	if r := get("/v1/ws?token=" + tok); r.status != 200 || r.body != "42" {
		t.Fatalf("?token= on the upgrade: %d %s", r.status, r.body)
	}
	wantError(t, get("/v1/history?token="+tok), 401, refusal.CodeUnauthenticated, "")
	wantError(t, e.do("POST", "/v1/ws/ticket", "", nil), 401, refusal.CodeUnauthenticated, "")
}

// TestPageHeaders: the pages carry the content-security policy and the
// other security headers. Break tried: the routes without PageHeaders
// (today's) had none.
func TestPageHeaders(t *testing.T) {
	e := newEnv(t, nil)
	e.s.engine.GET("/live/*path", PageHeaders, func(c *gin.Context) { c.String(200, "page") })
	resp, err := e.ts.Client().Get(e.ts.URL + "/live/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for h, want := range map[string]string{"Content-Security-Policy": PageCSP, "X-Content-Type-Options": "nosniff",
		"X-Frame-Options": "DENY", "Referrer-Policy": "same-origin"} {
		if got := resp.Header.Get(h); got != want {
			t.Errorf("%s: %q, want %q", h, got, want)
		}
	}
}

func jsonInto(s string, v any) error { return json.Unmarshal([]byte(s), v) }
