package loadtest

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/onair/onair/internal/testenv"
)

// TestAgainstOnair runs every scenario, then e2e, for a second each
// against one real `onair dev` (embedded Kafka, child Redis and
// ClickHouse, every role), and checks what the report files say.
func TestAgainstOnair(t *testing.T) {
	if testing.Short() {
		t.Skip("starts onair dev")
	}
	// The per-user rate limit is onair's own business, tested in api; here
	// Zipf's hottest user must not turn into 429s.
	o := testenv.StartOnair(t, "", "--rate-limit", "1000000")
	codes := map[string][]string{
		"progress": {"202"},
		"batch":    {"202"},
		"history":  {"200"},
		"continue": {"200"},
		"mixed":    {"200", "202"},
		"radio":    {"200"},
		"rooms":    {"200"},
	}
	for _, sc := range Scenarios() {
		want, ok := codes[sc]
		if !ok {
			t.Fatalf("scenario %q has no expected status codes here: add them", sc)
		}
		t.Run(sc, func(t *testing.T) {
			dir := t.TempDir()
			cfg := RunConfig{Scenario: sc, Rate: 150, Duration: time.Second, Users: 200, Items: 2000, Batch: 20,
				Target: o.URL, TokenSecret: o.Secret, ReportDir: dir, Seed: seedByDefault[sc], SeedWait: 30 * time.Second}
			if _, err := Run(context.Background(), cfg); err != nil {
				t.Fatalf("%v; onair stderr:\n%s", err, o.StderrTail())
			}
			s, got := readReport(t, dir)
			if s.Lost || s.Failed != 0 || s.Success != 1 || s.Requests < 120 || s.Requests > 165 {
				t.Fatalf("lost=%v failed=%d success=%v requests=%d codes=%v errors=%v", s.Lost, s.Failed, s.Success, s.Requests, got, s.Errors)
			}
			n := 0
			for _, c := range want {
				if got[c] == 0 {
					t.Fatalf("no %s among status codes %v", c, got)
				}
				n += got[c]
			}
			if uint64(n) != s.Requests {
				t.Fatalf("status codes %v, want only %v", got, want)
			}
			if cfg.Seed {
				if s.Seed == nil || s.Seed.Events != 200*DefaultSeedItems || s.Seed.Sampled == 0 {
					t.Fatalf("seed %+v", s.Seed)
				}
			}
		})
	}
	// After the seeded runs every user has a full first page: check one
	// the way an app would.
	t.Run("seeded", func(t *testing.T) {
		for _, path := range []string{"/v1/history?limit=20", "/v1/continue?limit=20"} {
			var page historyPage
			getJSON(t, o.URL+path, "Bearer "+o.Token(t, 137, ""), &page)
			if len(page.Items) != 20 {
				t.Fatalf("%s of user 137: %d items, want 20", path, len(page.Items))
			}
		}
	})

	t.Run("e2e", func(t *testing.T) {
		dir := t.TempDir()
		cfg := E2EConfig{
			RunConfig:   RunConfig{Rate: 100, Duration: time.Second, Users: 200, Items: 2000, Batch: 50, Target: o.URL, TokenSecret: o.Secret, ReportDir: dir},
			ClickHouse:  o.ClickHouseAddr,
			Database:    o.Database,
			Wait:        60 * time.Second,
			SampleEvery: 10,
		}
		if _, err := E2E(context.Background(), cfg); err != nil {
			t.Fatalf("%v; onair stderr:\n%s", err, o.StderrTail())
		}
		b, err := os.ReadFile(filepath.Join(dir, "e2e.json"))
		if err != nil {
			t.Fatal(err)
		}
		var s E2ESummary
		if err := json.Unmarshal(b, &s); err != nil {
			t.Fatal(err)
		}
		if s.Lost || !s.Complete || s.MissingCount != 0 || s.DuplicatedCount != 0 || s.Check.Found != s.AcceptedEvents {
			t.Fatalf("not exact: lost=%v complete=%v accepted=%d found=%d missing=%d duplicated=%d",
				s.Lost, s.Complete, s.AcceptedEvents, s.Check.Found, s.MissingCount, s.DuplicatedCount)
		}
		if s.AcceptedEvents != 50*int(s.Run.Requests) || s.Run.StatusCodes["202"] != int(s.Run.Requests) || s.Run.Requests < 80 {
			t.Fatalf("accepted %d events in %d requests, codes %v", s.AcceptedEvents, s.Run.Requests, s.Run.StatusCodes)
		}
		if v := s.Visibility; v.Samples == 0 || v.TimedOut != 0 || v.P99 <= 0 || v.P99 > 5000 {
			t.Fatalf("visibility %+v", v)
		}
		if s.EventsPerSec <= 0 {
			t.Fatalf("events/s %v", s.EventsPerSec)
		}
	})
}

func getJSON(t *testing.T, url, auth string, v any) {
	t.Helper()
	c := newClient(5*time.Second, nil)
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", auth)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	if err := decodeJSON(resp.Body, v); err != nil {
		t.Fatal(err)
	}
}
