package api

import (
	"bytes"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/onair/onair/api/openapi"
)

// TestOpenAPIServed: GET /openapi.yaml serves the embedded document, and
// the handler tests' client really checks exchanges against it.
func TestOpenAPIServed(t *testing.T) {
	e := newEnv(t, nil)
	r := e.get("/openapi.yaml", "")
	if r.status != 200 || !bytes.Equal([]byte(r.body), openapi.YAML) {
		t.Fatalf("GET /openapi.yaml: %d, %d bytes (want the %d of api/openapi/openapi.yaml)", r.status, len(r.body), len(openapi.YAML))
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/yaml") {
		t.Errorf("Content-Type %q", ct)
	}
	if n := e.api.Exchanges(); n != 1 {
		t.Errorf("the checker saw %d exchanges, want 1", n)
	}
}

// TestEveryRouteDocumented: every route api.New (dev sign-in included), MountRadio and MountRooms mount is
// in the OpenAPI document, and a route mounted without joining it is
// reported (Start logs it; testenv.StartOnair fails on that log line).
func TestEveryRouteDocumented(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.DevLogin = true })
	MountRadio(e.s, newFakeRadio())
	MountRooms(e.s, nil) // routes only: no request reaches the board
	missing, err := e.s.Undocumented()
	if err != nil || len(missing) != 0 {
		t.Fatalf("Undocumented() = %v, %v; add them to api/openapi/openapi.yaml", missing, err)
	}
	e.s.V1().GET("/undocumented/:id", func(*gin.Context) {})
	missing, err = e.s.Undocumented()
	if err != nil || len(missing) != 1 || missing[0] != "GET /v1/undocumented/:id" {
		t.Fatalf("after mounting an undocumented route: Undocumented() = %v, %v", missing, err)
	}
}
