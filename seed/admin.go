package seed

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/onair/onair/api"
)

// catalogChunk is the items per PUT /v1/admin/catalog (well under 1 MiB).
const catalogChunk = 500

// demo uploads the catalog, the stations and opens the rooms. A route that
// is not there (404/405: the feature is not in this build) is reported and
// skipped; any other failure is reported as failed.
func (r *runner) demo(ctx context.Context) []Part {
	g := r.cfg.Gen
	parts := []Part{
		r.step(ctx, "catalog", (g.Items+catalogChunk-1)/catalogChunk, func(i int) (string, string, any) {
			var items []Item
			for id := i*catalogChunk + 1; id <= min((i+1)*catalogChunk, g.Items); id++ {
				items = append(items, ItemOf(uint64(id)))
			}
			return http.MethodPut, "/v1/admin/catalog", map[string]any{"items": items}
		}),
		r.step(ctx, "stations", g.Stations, func(i int) (string, string, any) {
			return http.MethodPut, "/v1/admin/stations/" + strconv.Itoa(i+1), StationOf(uint64(i + 1))
		}),
		r.step(ctx, "rooms", g.Rooms, func(i int) (string, string, any) {
			// As admin, name the anchor the generated gifts go to.
			return http.MethodPost, "/v1/rooms/" + strconv.Itoa(i+1) + "/open", map[string]any{"anchor_id": AnchorOf(uint64(i + 1))}
		}),
	}
	return parts
}

// roomRoutes sends a little live-room traffic the way viewers do, through
// POST /v1/rooms/{id}/danmaku and /gifts with their own tokens (the bulk of
// danmaku and gifts goes in the event batches).
func (r *runner) roomRoutes(ctx context.Context) Part {
	g := r.cfg.Gen
	return r.stepAs(ctx, "room danmaku and gifts", g.Rooms*2, func(i int) (string, string, any, string) {
		room := i/2 + 1
		user := uint64(1 + i%max(g.Users, 1))
		tok, err := api.SignToken(r.cfg.Secret, user, "", time.Hour)
		if err != nil {
			return "", "", nil, ""
		}
		if i%2 == 0 {
			return http.MethodPost, fmt.Sprintf("/v1/rooms/%d/danmaku", room), map[string]any{"text": "hello from seed"}, "Bearer " + tok
		}
		return http.MethodPost, fmt.Sprintf("/v1/rooms/%d/gifts", room), map[string]any{"gift_id": 2, "value": 200,
			"anchor_id": AnchorOf(uint64(room)), "event_id": fmt.Sprintf("rg%s-%d", r.cfg.RunID, i)}, "Bearer " + tok
	})
}

// step runs n admin requests built by req, stopping at the first failure.
func (r *runner) step(ctx context.Context, name string, n int, req func(i int) (method, path string, body any)) Part {
	return r.stepAs(ctx, name, n, func(i int) (string, string, any, string) {
		m, p, b := req(i)
		return m, p, b, r.admin
	})
}

func (r *runner) stepAs(ctx context.Context, name string, n int, req func(i int) (method, path string, body any, auth string)) Part {
	for i := range n {
		method, path, body, auth := req(i)
		status, msg, err := r.do(ctx, method, path, auth, body)
		switch {
		case err != nil:
			r.cfg.Log.Error("seed demo step failed", "step", name, "path", path, "err", err)
			return Part{Name: name, Status: "failed: " + err.Error(), Failed: true}
		case status == http.StatusNotFound || status == http.StatusMethodNotAllowed:
			return Part{Name: name, Status: fmt.Sprintf("route not available (%d %s %s), skipped", status, method, routeOf(path))}
		case status/100 != 2:
			r.cfg.Log.Error("seed demo step failed", "step", name, "path", path, "status", status, "body", msg)
			return Part{Name: name, Status: fmt.Sprintf("failed: %s %s: %d %s", method, path, status, msg), Failed: true}
		}
	}
	return Part{Name: name, Status: fmt.Sprintf("ok (%d requests)", n)}
}

// routeOf hides the ids of a path, for the report: /v1/rooms/{id}/open.
func routeOf(path string) string {
	seg := strings.Split(path, "/")
	for i, s := range seg {
		if _, err := strconv.Atoi(s); err == nil {
			seg[i] = "{id}"
		}
	}
	return strings.Join(seg, "/")
}

// do sends one JSON request and returns the status and a short body.
func (r *runner) do(ctx context.Context, method, path, auth string, body any) (int, string, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return 0, "", err
	}
	req, err := http.NewRequestWithContext(ctx, method, r.cfg.Target+path, bytes.NewReader(b))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Authorization", auth)
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.cfg.Client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	return resp.StatusCode, string(bytes.TrimSpace(msg)), nil
}
