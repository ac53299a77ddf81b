package loadtest

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// testGenerator is a generator for cfg's scenario, users and items, at one
// request per second for a second.
func testGenerator(t *testing.T, cfg RunConfig, track bool, probeEvery int) *generator {
	t.Helper()
	cfg.Rate, cfg.Duration, cfg.TokenSecret = 1, time.Second, []byte("s")
	cfg.setDefaults()
	g, err := newGenerator(cfg, track, probeEvery)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestTargeterBodies(t *testing.T) {
	g := testGenerator(t, RunConfig{Scenario: "mixed", Users: 1000, Items: 5000, Batch: 7}, true, 10)
	tr := g.targeter(scenarioMixes["mixed"])
	ids := map[string]bool{}
	kinds := map[kind]int{}
	users := map[string]int{}
	probes := 0
	for i := 0; i < 4000; i++ {
		var tg vegeta.Target
		if err := tr(&tg); err != nil {
			t.Fatal(err)
		}
		k := kindOf(tg.URL)
		kinds[k]++
		users[tg.Header.Get("Authorization")]++
		if k == kindHistory || k == kindContinue {
			if tg.Method != "GET" || !strings.HasSuffix(tg.URL, "?limit=20") || tg.Body != nil {
				t.Fatalf("bad read %s %s", tg.Method, tg.URL)
			}
			continue
		}
		var evs []fakeEvent
		if k == kindProgress {
			var e fakeEvent
			if err := json.Unmarshal(tg.Body, &e); err != nil {
				t.Fatalf("progress body %s: %v", tg.Body, err)
			}
			e.Type = "progress"
			evs = []fakeEvent{e}
		} else {
			var b struct{ Events []fakeEvent }
			if err := json.Unmarshal(tg.Body, &b); err != nil {
				t.Fatalf("batch body %s: %v", tg.Body, err)
			}
			if len(b.Events) != 7 {
				t.Fatalf("batch of %d events, want 7", len(b.Events))
			}
			evs = b.Events
		}
		for i, e := range evs {
			if !validEvent(e) || ids[e.EventID] || !strings.HasPrefix(e.EventID, "lt-"+g.runID+"-") {
				t.Fatalf("bad or repeated event %+v", e)
			}
			ids[e.EventID] = true
			if i > 0 && e.TS <= evs[i-1].TS {
				t.Fatalf("ts not increasing within a batch: %+v", evs)
			}
		}
		v, ok := g.pending.Load(tg.Header.Get(trackHeader))
		if !ok {
			t.Fatalf("write %s not tracked", tg.URL)
		}
		w := v.(*write)
		if got := w.ids(); len(got) != len(evs) || got[len(got)-1] != evs[len(evs)-1].EventID {
			t.Fatalf("tracked ids %v do not match the body's", got)
		}
		if p := w.probe; p != nil {
			probes++
			last := evs[len(evs)-1]
			if last.Type != "progress" || p.item != last.ItemID || p.ts != last.TS || p.user <= 1000 {
				t.Fatalf("probe %+v does not match the last event %+v", p, last)
			}
		}
	}
	// 60/10/25/5 mix, loosely
	if kinds[kindProgress] < 2000 || kinds[kindBatch] < 250 || kinds[kindHistory] < 800 || kinds[kindContinue] < 100 {
		t.Fatalf("mix %v", kinds)
	}
	if probes == 0 {
		t.Fatal("no probes at one in 10 writes")
	}
	// Zipf: user 1 is far hotter than an average user.
	if hot := users[g.tokens[0]]; hot < 10*4000/1000 {
		t.Fatalf("user 1 drew %d of 4000 requests: not Zipf-skewed", hot)
	}
}

// TestUntrackedWrites: without tracking, a user's writes share one header
// (vegeta copies it into each request), which carries no tracking header,
// and event ids stay unique.
func TestUntrackedWrites(t *testing.T) {
	g := testGenerator(t, RunConfig{Scenario: "progress", Users: 3, Items: 50}, false, 0)
	tr := g.targeter(scenarioMixes["progress"])
	ids := map[string]bool{}
	byToken := map[string]vegeta.Target{}
	for i := 0; i < 300; i++ {
		var tg vegeta.Target
		if err := tr(&tg); err != nil {
			t.Fatal(err)
		}
		var e fakeEvent
		if err := json.Unmarshal(tg.Body, &e); err != nil || ids[e.EventID] {
			t.Fatalf("body %s: %v (or a repeated id)", tg.Body, err)
		}
		ids[e.EventID] = true
		tok := tg.Header.Get("Authorization")
		if tok == "" || tg.Header.Get("Content-Type") != "application/json" || tg.Header.Get(trackHeader) != "" {
			t.Fatalf("header %v", tg.Header)
		}
		if prev, ok := byToken[tok]; ok && fmt.Sprintf("%p", prev.Header) != fmt.Sprintf("%p", tg.Header) {
			t.Fatal("one user's writes do not share their header")
		}
		byToken[tok] = tg
	}
	if len(byToken) != 3 {
		t.Fatalf("%d users drawn, want 3", len(byToken))
	}
}
