package analytics_test

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/onair/onair/analytics"
	"github.com/onair/onair/api"
	"github.com/onair/onair/internal/chdb"
)

// TestRoutesDocumentedAndClickHouseDown: every route api.MountAnalytics adds is in the
// OpenAPI document, and with ClickHouse unreachable each endpoint answers
// the documented 503 unavailable with Retry-After (checked by apitest).
func TestRoutesDocumentedAndClickHouseDown(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close() // nothing listens there now: ClickHouse is down
	ch, err := chdb.Open(chdb.Config{Addr: dead})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ch.Close() })
	s, err := analytics.New(analytics.Config{ClickHouse: ch})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := api.New(api.Config{AuthSecret: []byte(pageSecret)})
	if err != nil {
		t.Fatal(err)
	}
	api.MountAnalytics(srv, s)
	if missing, err := srv.Undocumented(); err != nil || len(missing) != 0 {
		t.Fatalf("Undocumented() = %v, %v; add them to api/openapi/openapi.yaml", missing, err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	get := getter(t, hs)
	admin := token(t, api.RoleAdmin)
	for _, path := range []string{"dau", "listening", "retention", "stations", "top", "affinity?user=1"} {
		code, body := get("/v1/admin/analytics/"+path, admin)
		if code != http.StatusServiceUnavailable || !strings.Contains(body, `"code":"unavailable"`) {
			t.Errorf("GET %s with ClickHouse down: %d %s, want 503 unavailable", path, code, body)
		}
	}
}
