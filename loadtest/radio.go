package loadtest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/onair/onair/internal/apiclient"
	"github.com/onair/onair/internal/authtoken"
	"github.com/onair/onair/recommend"
)

// The radio scenario: every request is one user's
// GET /v1/stations/{1|2}/playlist?limit=20 (station 1 three times in
// four), against the demo catalog and stations, which the run first puts
// through the admin API (idempotent) and waits for.

func radioPlaylistPath(station int) string {
	return "/v1/stations/" + strconv.Itoa(station) + "/playlist?limit=20"
}

func (g *generator) fillPlaylist(t *vegeta.Target, d *drawer, u *urls) {
	uid := d.users.Uint64() + 1
	t.Method = http.MethodGet
	t.Header = http.Header{"Authorization": {g.tokens[uid-1]}}
	if d.r.IntN(4) == 0 {
		t.URL = strings.Replace(u[kindPlaylist], "/stations/1/", "/stations/2/", 1)
	}
}

// seedRadio puts the demo catalog and stations and waits until station 1
// serves a playlist.
func seedRadio(ctx context.Context, cfg RunConfig) error {
	tok, err := authtoken.Sign(cfg.TokenSecret, 1, authtoken.RoleAdmin, time.Hour)
	if err != nil {
		return err
	}
	admin := apiclient.Client{Base: cfg.Target, Token: tok, HTTP: newClient(cfg.Timeout, nil)}
	if err := admin.PutCatalog(ctx, recommend.DemoCatalog()); err != nil {
		return fmt.Errorf("radio seed: %w", err)
	}
	for _, st := range recommend.DemoStations() {
		if err := admin.PutStation(ctx, st.ID, st); err != nil {
			return fmt.Errorf("radio seed: %w", err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		var r struct{ Items []json.RawMessage }
		if err := admin.Do(ctx, http.MethodGet, radioPlaylistPath(1), nil, &r); err == nil && len(r.Items) > 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("radio seed: station 1 serves no playlist 10 s after the demo data was put")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond): // the engine builds the playlists in the background
		}
	}
}
