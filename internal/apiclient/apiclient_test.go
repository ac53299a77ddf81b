package apiclient

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// TestClient: requests carry the token and JSON; a refusal is a
// *StatusError naming the method, path, status and body; PostEvents sends
// a batch again after a 503 and gives up on a 400.
func TestClient(t *testing.T) {
	var posts atomic.Int32
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok" {
			http.Error(w, `{"error":{"code":"unauthenticated"}}`, http.StatusUnauthorized)
			return
		}
		switch r.Method + " " + r.URL.Path {
		case "PUT /v1/admin/catalog":
			var b struct{ Items []int }
			if err := json.NewDecoder(r.Body).Decode(&b); err != nil || len(b.Items) != 2 || r.Header.Get("Content-Type") != "application/json" {
				http.Error(w, "bad catalog", http.StatusBadRequest)
				return
			}
			io.WriteString(w, `{"ok":true}`)
		case "POST /v1/events":
			body, _ := io.ReadAll(r.Body)
			switch {
			case string(body) == "bad":
				http.Error(w, "bad batch", http.StatusBadRequest)
			case posts.Add(1) == 1:
				http.Error(w, "busy", http.StatusServiceUnavailable)
			default:
				w.WriteHeader(http.StatusAccepted)
			}
		default:
			http.NotFound(w, r)
		}
	}))
	defer hs.Close()
	ctx := context.Background()
	c := Client{Base: hs.URL, Token: "tok", HTTP: hs.Client()}

	if err := c.PutCatalog(ctx, []int{1, 2}); err != nil {
		t.Fatal(err)
	}
	var se *StatusError
	err := c.PutStation(ctx, 7, map[string]any{"id": 7})
	if !errors.As(err, &se) || se.Status != 404 || se.Method != "PUT" || se.Path != "/v1/admin/stations/7" || !strings.Contains(err.Error(), "404 page not found") {
		t.Errorf("PutStation on a missing route: %v", err)
	}
	if err := c.WithToken("other").PutCatalog(ctx, []int{1, 2}); !errors.As(err, &se) || se.Status != 401 || !strings.Contains(se.Body, "unauthenticated") {
		t.Errorf("PutCatalog with another token: %v", err)
	}
	if retries, err := c.PostEvents(ctx, []byte("ok")); err != nil || retries != 1 {
		t.Errorf("PostEvents after one 503: %d retries, %v; want 1, nil", retries, err)
	}
	if retries, err := c.PostEvents(ctx, []byte("bad")); !errors.As(err, &se) || se.Status != 400 || retries != 0 {
		t.Errorf("PostEvents refused: %d retries, %v; want 0 and a 400", retries, err)
	}
}
