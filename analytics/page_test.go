package analytics_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/onair/onair/analytics"
	"github.com/onair/onair/api"
	"github.com/onair/onair/internal/apitest"
	"github.com/onair/onair/internal/browsertest"
	"github.com/onair/onair/internal/refusal"
	"github.com/onair/onair/internal/testenv"
)

const pageSecret = "page-test-secret"

// pageServer serves the analytics routes over a database holding a little
// traffic of today and the last days.
func pageServer(t *testing.T) *httptest.Server {
	t.Helper()
	ch, db := testenv.ClickHouse(t)
	analytics.SeedPageTraffic(t, ch, db)
	s, err := analytics.New(analytics.Config{ClickHouse: ch, Database: db})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := api.New(api.Config{AuthSecret: []byte(pageSecret)})
	if err != nil {
		t.Fatal(err)
	}
	api.MountAnalytics(srv, s)
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	return hs
}

func token(t *testing.T, role string) string {
	t.Helper()
	tok, err := api.SignToken([]byte(pageSecret), 1, role, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// getter returns a GET helper whose requests and replies are checked
// against the OpenAPI document (internal/apitest); redirects are not
// followed, so each exchange is checked as the server sent it.
func getter(t *testing.T, hs *httptest.Server) func(path, tok string) (int, string) {
	client := apitest.New(t).Client(nil)
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return func(path, tok string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, hs.URL+path, nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
}

func TestEndpoints(t *testing.T) {
	t.Parallel()
	hs := pageServer(t)
	get := getter(t, hs)
	admin := token(t, api.RoleAdmin)
	f := func(path, tok string, status int, contains string) {
		t.Helper()
		code, body := get(path, tok)
		if code != status || !strings.Contains(body, contains) {
			t.Errorf("GET %s: %d %s, want %d containing %q", path, code, body, status, contains)
		}
	}
	f("/v1/admin/analytics/dau", "", http.StatusUnauthorized, "unauthenticated")
	f("/v1/admin/analytics/dau", token(t, ""), http.StatusForbidden, "permission_denied")
	f("/v1/admin/analytics/dau?days=0", admin, http.StatusBadRequest, `"field":"days"`)
	f("/v1/admin/analytics/top?window=month", admin, http.StatusBadRequest, `"field":"window"`)
	f("/v1/admin/analytics/top?biz=tv", admin, http.StatusBadRequest, `"field":"biz"`)
	f("/v1/admin/analytics/affinity", admin, http.StatusBadRequest, `"field":"user"`)
	f("/v1/admin/analytics/stations", admin, http.StatusOK, `{"items":[{"station_id":2,"plays":1,"skips":1,"skip_rate":0.5}]}`)
	f("/v1/admin/analytics/top?window=day&limit=3", admin, http.StatusOK, `"items":[`)
	f("/v1/admin/analytics/retention", admin, http.StatusOK, `"items":[`)
	f("/v1/admin/analytics/listening?days=2", admin, http.StatusOK, `"days":[`)
	f("/v1/admin/analytics/affinity?user=1", admin, http.StatusOK, `{"items":[`)
	f("/analytics", "", http.StatusMovedPermanently, "")
	f("/analytics/", "", http.StatusOK, "<title>onair analytics</title>")
	f("/analytics/uPlot.iife.min.js", "", http.StatusOK, "uPlot")
	f("/analytics/uPlot.min.css", "", http.StatusOK, "")
	f("/analytics/uPlot.LICENSE", "", http.StatusOK, "MIT")
	f("/analytics/index.html", "", http.StatusMovedPermanently, "")
	f("/analytics/nope.js", "", http.StatusNotFound, `"code":"not_found"`)

	_, body := get("/v1/admin/analytics/dau?days=5", admin)
	var dau analytics.Series
	if err := json.Unmarshal([]byte(body), &dau); err != nil {
		t.Fatal(err)
	}
	// day i (oldest first) has 3 + (4 - i) audio users, and user 50 in video
	if len(dau.Days) != 5 || len(dau.Series["audio"]) != 5 {
		t.Fatalf("dau = %s", body)
	}
	for i := range 5 {
		others := 1.0 // user 50's video
		if i == 4 {
			others = 2 // and today user 5's gift
		}
		if a, all := dau.Series["audio"][i], dau.Series["all"][i]; a != float64(7-i) || all != a+others {
			t.Errorf("dau day %s: audio %v all %v, want %d and %v", dau.Days[i], a, all, 7-i, float64(7-i)+others)
		}
	}
}

// TestPageInBrowser drives the page in headless Chromium: it asks for a
// token once, draws the charts and tables from the endpoints, and remembers
// the token on reload.
func TestPageInBrowser(t *testing.T) {
	t.Parallel()
	hs := pageServer(t)
	ctx, cancel := context.WithTimeout(browsertest.Start(t), 60*time.Second)
	defer cancel()

	if err := chromedp.Do(ctx, chromedp.Navigate(hs.URL+api.AnalyticsPagePath)); err != nil {
		t.Fatal(err)
	}
	browsertest.WaitJS(t, ctx, `!document.getElementById("token-form").hidden`, "the page to ask for a token")
	tok := token(t, api.RoleAdmin)
	if err := chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := chromedp.Evaluate[chromedp.Void](`document.getElementById("token").value = "`+tok+`"; document.getElementById("token-save").click()`)(ctx, tg)
		return err
	})); err != nil {
		t.Fatal(err)
	}
	browsertest.WaitJS(t, ctx, `!!document.body.dataset.loaded`, "the page to load its data")
	type drawn struct {
		DauCanvas, ListeningCanvas, TopDay, Stations int
		StationText                                  string
	}
	d, err := chromedp.Run(ctx, chromedp.Evaluate[drawn](`({
		DauCanvas: document.querySelectorAll("#dau-chart canvas").length,
		ListeningCanvas: document.querySelectorAll("#listening-chart canvas").length,
		TopDay: document.querySelectorAll("#top-day tbody tr").length,
		Stations: document.querySelectorAll("#stations tbody tr").length,
		StationText: document.querySelector("#stations tbody").textContent})`))
	if err != nil {
		t.Fatal(err)
	}
	dauCanvas, listeningCanvas, topDay, stations, stationText := d.DauCanvas, d.ListeningCanvas, d.TopDay, d.Stations, d.StationText
	// today: users 1..3 played items 10..12 (audio is the default biz)
	if dauCanvas == 0 || listeningCanvas == 0 || topDay != 3 || stations != 1 || !strings.Contains(stationText, "50.0 %") {
		t.Fatalf("page drew dau canvases %d, listening canvases %d, %d top items today (want 3), %d stations (want 1: %q)",
			dauCanvas, listeningCanvas, topDay, stations, stationText)
	}
	if err := chromedp.Do(ctx, chromedp.Reload()); err != nil {
		t.Fatal(err)
	}
	browsertest.WaitJS(t, ctx, `!!document.body.dataset.loaded`, "the reloaded page to load its data")
	formHidden, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.getElementById("token-form").hidden`))
	if err != nil || !formHidden {
		t.Fatalf("after reload: form hidden %v, err %v; want the token remembered", formHidden, err)
	}
}

// TestMalformedParams: every malformed query parameter of the analytics
// endpoints gets a 400 naming it, and the document agrees the request is
// invalid or at least that the reply is one it documents (apitest).
func TestMalformedParams(t *testing.T) {
	t.Parallel()
	hs := pageServer(t)
	get := getter(t, hs)
	admin := token(t, api.RoleAdmin)
	for _, c := range []struct{ path, field string }{
		{"dau?days=", "days"}, {"dau?days=x", "days"}, {"dau?days=367", "days"}, {"dau?days=1.5", "days"},
		{"listening?days=-1", "days"}, {"retention?days=0", "days"}, {"stations?days=400", "days"},
		{"top?biz=", "biz"}, {"top?biz=AUDIO", "biz"}, {"top?window=", "window"}, {"top?window=month", "window"},
		{"top?limit=0", "limit"}, {"top?limit=1001", "limit"}, {"top?limit=ten", "limit"}, {"top?window=day&limit=", "limit"},
		{"affinity", "user"}, {"affinity?user=0", "user"}, {"affinity?user=-3", "user"}, {"affinity?user=abc", "user"},
		{"affinity?user=9223372036854775808", "user"}, {"affinity?user=1&days=0", "days"}, {"affinity?user=1&limit=1001", "limit"},
	} {
		code, body := get("/v1/admin/analytics/"+c.path, admin)
		var reply struct {
			Error struct{ Code, Field string } `json:"error"`
		}
		_ = json.Unmarshal([]byte(body), &reply)
		if code != http.StatusBadRequest || reply.Error.Code != refusal.CodeInvalidArgument || reply.Error.Field != c.field {
			t.Errorf("GET %s: %d %s, want 400 invalid_argument naming %q", c.path, code, body, c.field)
		}
	}
}
