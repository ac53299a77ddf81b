package api

import (
	"net/http"
	"testing"

	"github.com/onair/onair/internal/refusal"
)

// TestMalformedQueryIs400: on every route, a query string that does not
// parse is refused with 400 invalid_argument naming "query", before the
// handler runs (gin would drop the error and every parameter with it).
func TestMalformedQueryIs400(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	tok := token(t, 42, "")
	for _, r := range []struct{ method, path string }{
		{"GET", "/v1/history"},
		{"DELETE", "/v1/history"},
		{"GET", "/v1/history/settings"},
		{"PUT", "/v1/history/settings"},
		{"DELETE", "/v1/history/audio/1"},
		{"GET", "/v1/progress"},
		{"POST", "/v1/progress"},
		{"POST", "/v1/events"},
		{"GET", "/v1/continue"},
		{"POST", "/v1/continue/audio/1/hide"},
		{"GET", "/healthz"},
		{"GET", "/readyz"},
	} {
		for _, q := range []string{"cursor=%%%garbage", "%zz", "limit=5;biz=audio", "items=audio:1%2"} {
			got := e.do(r.method, r.path+"?"+q, tok, nil)
			wantError(t, got, http.StatusBadRequest, refusal.CodeInvalidArgument, "query")
		}
	}
	if calls := e.hist.calls; len(calls) > 0 {
		t.Fatalf("the store was called for malformed queries: %v", calls)
	}
}

// TestQueryParameters: a parameter given twice is refused naming it;
// unknown parameters are ignored; a known one is read as documented.
func TestQueryParameters(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	tok := token(t, 42, "")
	f := func(path string, status int, field string) {
		t.Helper()
		got := e.get(path, tok)
		if status != http.StatusOK {
			wantError(t, got, status, refusal.CodeInvalidArgument, field)
		} else if got.status != status {
			t.Fatalf("GET %s: %d %s, want %d", path, got.status, got.body, status)
		}
	}
	f("/v1/history?limit=5&limit=7", 400, "limit")
	f("/v1/history?biz=audio&biz=video", 400, "biz")
	f("/v1/history?cursor=a&cursor=b", 400, "cursor")
	f("/v1/progress?items=audio:1&items=video:2", 400, "items")
	f("/v1/progress?items=audio:9223372036854775808", 400, "items") // 2⁶³
	f("/v1/continue?limit=3&limit=3", 400, "limit")
	f("/v1/history?limit=5&unknown=1&other=%20", 200, "")
	if e.hist.gotLimit != 5 {
		t.Fatalf("limit %d reached the store, want 5", e.hist.gotLimit)
	}
	f("/v1/progress?items=audio:9223372036854775807", 200, "")
}
