package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/onair/onair/internal/refusal"
)

// TestEveryRouteRefusesInOneShape: every route mounted (radio, dev sign-in,
// rooms and analytics included) answers its refusals with refusal.Write's
// body and nothing else: {"error": {code, message[, field]}}, the code the one its
// status maps to, JSON Content-Type. Each route is asked without a token,
// with a malformed query, and with every path parameter and the body bad.
func TestEveryRouteRefusesInOneShape(t *testing.T) {
	t.Parallel()
	codeOf := map[int]string{} // status → the one code refusal maps it to
	for k := refusal.Invalid; k <= refusal.Internal; k++ {
		codeOf[k.Status()] = k.Code()
	}
	e := newEnv(t, nil)
	MountAccounts(e.s, AccountsDeps{}) // routes only: refused before the service
	MountRadio(e.s, newFakeRadio())
	MountRooms(e.s, nil, nil)             // every request below is refused before the board
	MountAnalytics(e.s, deadAnalytics(t)) // refused before a query
	admin := token(t, 1, RoleAdmin)
	check := func(method, path, tok, body string, wantStatus int) {
		t.Helper()
		req, _ := http.NewRequest(method, e.ts.URL+path, strings.NewReader(body))
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := e.ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var buf bytes.Buffer
		_, _ = buf.ReadFrom(resp.Body)
		if resp.StatusCode < 400 {
			if wantStatus != 0 {
				t.Errorf("%s %s: %d, want %d", method, path, resp.StatusCode, wantStatus)
			}
			return
		}
		if wantStatus != 0 && resp.StatusCode != wantStatus {
			t.Errorf("%s %s: %d %s, want %d", method, path, resp.StatusCode, buf.String(), wantStatus)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
			t.Errorf("%s %s: Content-Type %q", method, path, ct)
		}
		var got struct {
			Error  struct{ Code, Message, Field string }   `json:"error"`
			Errors []struct{ Code, Field, Message string } `json:"errors"` // a batch's bad entries
		}
		d := json.NewDecoder(bytes.NewReader(buf.Bytes()))
		d.DisallowUnknownFields()
		if err := d.Decode(&got); err != nil || got.Error.Message == "" || got.Error.Code != codeOf[resp.StatusCode] {
			t.Errorf("%s %s: %d %s is not the one error shape (want code %q): %v", method, path, resp.StatusCode, buf.String(), codeOf[resp.StatusCode], err)
		}
		for _, d := range got.Errors {
			if d.Code != got.Error.Code || d.Message == "" {
				t.Errorf("%s %s: entry %+v of %s", method, path, d, buf.String())
			}
		}
	}
	for _, r := range e.s.Router().Routes() {
		if strings.HasPrefix(r.Path, "/v1/") && !strings.HasPrefix(r.Path, "/v1/auth/") {
			check(r.Method, r.Path, "", "", http.StatusUnauthorized)
		}
		if r.Path != "/metrics" { // promhttp's own handler, not an API route
			check(r.Method, r.Path+"?%zz", admin, "", http.StatusBadRequest)
		}
		if strings.ContainsAny(r.Path, ":*") {
			parts := strings.Split(r.Path, "/")
			for i, p := range parts {
				if strings.HasPrefix(p, ":") || strings.HasPrefix(p, "*") {
					parts[i] = "x"
				}
			}
			check(r.Method, strings.Join(parts, "/"), admin, "{", 0)
		} else if r.Method != http.MethodGet {
			check(r.Method, r.Path, admin, "{", 0)
		}
	}
}
