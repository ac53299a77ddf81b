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

// demo uploads the catalog, the stations, and makes the demo anchors
// (approved) and their rooms (open) through the anchor and room routes. A route that
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
		r.step("rooms", g.Rooms, func(i int) error { return r.room(ctx, uint64(i+1)) }),
	}
}

// room makes AnchorOf(n) an approved anchor (applying with a token minted
// for that fixed user id, approved by the admin), creates their room and
// opens it, as an anchor would. On a fresh database the n-th room created
// gets id n (the "rooms" sequence starts at 1), which the generated gift
// events name; a room created by an earlier run is returned unchanged.
func (r *runner) room(ctx context.Context, n uint64) error {
	uid := AnchorOf(n)
	tok, err := authtoken.Sign(r.cfg.Secret, uid, "", time.Hour)
	if err != nil {
		return err
	}
	anchor := r.admin.WithToken(tok)
	if err := anchor.Do(ctx, http.MethodPost, "/v1/anchor/apply", map[string]any{"reason": "seed demo anchor"}, nil); err != nil {
		return err
	}
	if err := r.admin.Do(ctx, http.MethodPost, "/v1/admin/anchors/"+strconv.FormatUint(uid, 10)+"/approve", nil, nil); err != nil {
		return err
	}
	var room struct {
		RoomID uint64 `json:"room_id"`
	}
	in := map[string]any{"title": fmt.Sprintf("Demo room %d", n), "category": "music"}
	if err := anchor.Do(ctx, http.MethodPost, "/v1/rooms", in, &room); err != nil {
		return err
	}
	if room.RoomID != n {
		r.cfg.Log.Warn("seed room id differs from the generated events' room (the database held other rooms)", "want", n, "got", room.RoomID)
	}
	r.rooms = append(r.rooms, room.RoomID)
	return anchor.Do(ctx, http.MethodPost, "/v1/rooms/"+strconv.FormatUint(room.RoomID, 10)+"/open", nil, nil)
}

// roomRoutes sends a little live-room traffic the way viewers do, through
// POST /v1/rooms/{id}/danmaku and paid /gifts (a recharge of 200 coins,
// then a rocket) with the demo users' tokens (the bulk of danmaku and
// gifts goes in the event batches, posted as a trusted service).
func (r *runner) roomRoutes(ctx context.Context) Part {
	g := r.cfg.Gen
	return r.step("room danmaku and gifts", g.Rooms*2, func(i int) error {
		room := uint64(i/2 + 1)
		if i/2 < len(r.rooms) {
			room = r.rooms[i/2] // the id the server gave it
		}
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
		// gifts are paid for: the viewer recharges first (the dev payment
		// provider always pays; once per order id)
		if err := viewer.Do(ctx, http.MethodPost, "/v1/wallet/recharge", map[string]any{
			"order_id": fmt.Sprintf("seed-%s-%d", r.cfg.RunID, i), "coins": 200}, nil); err != nil {
			return err
		}
		return viewer.Do(ctx, http.MethodPost, fmt.Sprintf("/v1/rooms/%d/gifts", room), map[string]any{"gift_id": 2, "count": 1,
			"event_id": fmt.Sprintf("rg%s-%d", r.cfg.RunID, i)}, nil)
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
