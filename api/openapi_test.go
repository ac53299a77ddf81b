package api

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/onair/onair/ingest"
	"github.com/onair/onair/internal/openapi"
)

// TestOpenAPIServed: GET /openapi.yaml serves the embedded document, and
// the handler tests' client really checks exchanges against it.
func TestOpenAPIServed(t *testing.T) {
	e := newEnv(t, nil)
	r := e.get("/openapi.yaml", "")
	if r.status != 200 || !bytes.Equal([]byte(r.body), openapi.YAML) {
		t.Fatalf("GET /openapi.yaml: %d, %d bytes (want the %d of internal/openapi/openapi.yaml)", r.status, len(r.body), len(openapi.YAML))
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
	e := newEnv(t, nil)
	MountAccounts(e.s, AccountsDeps{}) // routes only: refused before the service
	MountRadio(e.s, newFakeRadio())
	MountRooms(e.s, nil, nil) // routes only: no request reaches the board
	missing, err := e.s.Undocumented()
	if err != nil || len(missing) != 0 {
		t.Fatalf("Undocumented() = %v, %v; add them to internal/openapi/openapi.yaml", missing, err)
	}
	e.s.V1().GET("/undocumented/:id", func(*gin.Context) {})
	missing, err = e.s.Undocumented()
	if err != nil || len(missing) != 1 || missing[0] != "GET /v1/undocumented/:id" {
		t.Fatalf("after mounting an undocumented route: Undocumented() = %v, %v", missing, err)
	}
}

// TestBizListIsIngests: the document's business lines are ingest's, the
// one list (a new line is added there and here together).
func TestBizListIsIngests(t *testing.T) {
	doc, err := openapi.Document()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, v := range doc.Components.Schemas["Biz"].Value.Enum {
		got = append(got, v.(string))
	}
	if want := ingest.BizNames(); !slices.Equal(got, want) {
		t.Errorf("schema Biz lists %v, ingest %v", got, want)
	}
	got = got[:0]
	for _, v := range doc.Components.Parameters["BizFilter"].Value.Schema.Value.Enum {
		got = append(got, v.(string))
	}
	if want := append([]string{""}, ingest.BizNames()...); !slices.Equal(got, want) {
		t.Errorf("parameter biz lists %v, want %v (\"\" = every line)", got, want)
	}
}
