package loadtest

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

	"github.com/golang-jwt/jwt/v5"
	vegeta "github.com/tsenart/vegeta/v12/lib"

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
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "1", "role": "admin",
		"exp": time.Now().Add(time.Hour).Unix()}).SignedString(cfg.TokenSecret)
	if err != nil {
		return err
	}
	client := newClient(cfg.Timeout, nil)
	put := func(path string, body any) error {
		b, _ := json.Marshal(body)
		req, _ := http.NewRequestWithContext(ctx, http.MethodPut, cfg.Target+path, bytes.NewReader(b))
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := client.Do(req)
		if err != nil {
			return fmt.Errorf("radio seed: PUT %s: %w", path, err)
		}
		defer resp.Body.Close()
		msg, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("radio seed: PUT %s: %s: %s", path, resp.Status, msg)
		}
		return nil
	}
	if err := put("/v1/admin/catalog", map[string]any{"items": recommend.DemoCatalog()}); err != nil {
		return err
	}
	for _, st := range recommend.DemoStations() {
		if err := put("/v1/admin/stations/"+strconv.FormatUint(st.ID, 10), st); err != nil {
			return err
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, cfg.Target+radioPlaylistPath(1), nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		if resp, err := client.Do(req); err == nil {
			var r struct{ Items []json.RawMessage }
			_ = json.NewDecoder(resp.Body).Decode(&r)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && len(r.Items) > 0 {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("radio seed: station 1 serves no playlist 10 s after the demo data was put")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
