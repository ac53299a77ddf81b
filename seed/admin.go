package seed

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/onair/onair/internal/apiclient"
	"github.com/onair/onair/internal/authtoken"
)

// catalogChunk is the items per PUT /v1/admin/catalog (well under 1 MiB).
const catalogChunk = 500

// demo uploads the catalog, the stations and opens the rooms. A route that
// is not there (404/405: the feature is not in this build) is reported and
// skipped; any other failure is reported as failed.
func (r *runner) demo(ctx context.Context) []Part {
	g := r.cfg.Gen
	return []Part{
		r.step("catalog", (g.Items+catalogChunk-1)/catalogChunk, func(i int) error {
			var items []Item
			for id := i*catalogChunk + 1; id <= min((i+1)*catalogChunk, g.Items); id++ {
				items = append(items, ItemOf(uint64(id)))
			}
			return r.admin.PutCatalog(ctx, items)
		}),
		r.step("stations", g.Stations, func(i int) error {
			return r.admin.PutStation(ctx, uint64(i+1), StationOf(uint64(i+1)))
		}),
		r.step("rooms", g.Rooms, func(i int) error {
			// As admin, name the anchor the generated gifts go to.
			return r.admin.Do(ctx, http.MethodPost, "/v1/rooms/"+strconv.Itoa(i+1)+"/open", map[string]any{"anchor_id": AnchorOf(uint64(i + 1))}, nil)
		}),
	}
}

// roomRoutes sends a little live-room traffic the way viewers do, through
// POST /v1/rooms/{id}/danmaku and /gifts with the demo users' tokens (the
// bulk of danmaku and gifts goes in the event batches).
func (r *runner) roomRoutes(ctx context.Context) Part {
	g := r.cfg.Gen
	return r.step("room danmaku and gifts", g.Rooms*2, func(i int) error {
		room := i/2 + 1
		var viewer apiclient.Client
		if len(r.viewers) > 0 { // the demo users, named by nickname
			viewer = r.viewers[i%len(r.viewers)]
		} else {
			user := uint64(1 + i%max(g.Users, 1))
			tok, err := authtoken.Sign(r.cfg.Secret, user, "", time.Hour)
			if err != nil {
				return err
			}
			viewer = r.admin.WithToken(tok)
		}
		if i%2 == 0 {
			return viewer.Do(ctx, http.MethodPost, fmt.Sprintf("/v1/rooms/%d/danmaku", room), map[string]any{"text": "hello from seed"}, nil)
		}
		return viewer.Do(ctx, http.MethodPost, fmt.Sprintf("/v1/rooms/%d/gifts", room), map[string]any{"gift_id": 2, "value": 200,
			"anchor_id": AnchorOf(uint64(room)), "event_id": fmt.Sprintf("rg%s-%d", r.cfg.RunID, i)}, nil)
	})
}

// step makes n calls, stopping at the first failure.
func (r *runner) step(name string, n int, call func(i int) error) Part {
	for i := range n {
		err := call(i)
		var refused *apiclient.StatusError
		switch {
		case err == nil:
		case errors.As(err, &refused) && (refused.Status == http.StatusNotFound || refused.Status == http.StatusMethodNotAllowed):
			return Part{Name: name, Status: fmt.Sprintf("route not available (%d %s %s), skipped", refused.Status, refused.Method, routeOf(refused.Path))}
		default:
			r.lastErr = err
			r.cfg.Log.Error("seed demo step failed", "step", name, "err", err)
			return Part{Name: name, Status: "failed: " + err.Error(), Failed: true}
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
