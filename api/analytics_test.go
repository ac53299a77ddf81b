package api

import (
	"net"
	"net/http"
	"testing"

	"github.com/onair/onair/analytics"
	"github.com/onair/onair/internal/chdb"
	"github.com/onair/onair/internal/refusal"
)

// deadAnalytics is an analytics store whose ClickHouse is down: nothing
// listens at its address.
func deadAnalytics(t *testing.T) *analytics.Store {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close()
	ch, err := chdb.Open(chdb.Config{Addr: dead})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ch.Close() })
	st, err := analytics.New(analytics.Config{ClickHouse: ch})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestAnalyticsRoutesDocumentedAndClickHouseDown: every route
// MountAnalytics adds is in the OpenAPI document, and with ClickHouse
// unreachable each endpoint answers the documented 503 unavailable with
// Retry-After (checked by apitest). analytics' own tests cover the replies
// over a real ClickHouse and the page in a browser.
func TestAnalyticsRoutesDocumentedAndClickHouseDown(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	MountAnalytics(e.s, deadAnalytics(t))
	if missing, err := e.s.Undocumented(); err != nil || len(missing) != 0 {
		t.Fatalf("Undocumented() = %v, %v; add them to internal/openapi/openapi.yaml", missing, err)
	}
	admin := token(t, 1, RoleAdmin)
	for _, path := range []string{"dau", "listening", "retention", "stations", "top", "affinity?user=1"} {
		r := e.get("/v1/admin/analytics/"+path, admin)
		wantError(t, r, http.StatusServiceUnavailable, refusal.CodeUnavailable, "")
		if r.header.Get("Retry-After") != "1" {
			t.Errorf("GET %s: Retry-After %q, want 1", path, r.header.Get("Retry-After"))
		}
	}
}
