package seed

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/onair/onair/ingest"
)

func generate(cfg GenConfig) []ingest.Event {
	var out []ingest.Event
	Generate(cfg, func(e *ingest.Event) bool { out = append(out, *e); return true })
	return out
}

// TestGenerateShape checks the traffic against what the generator promises
// (package doc, GenConfig): the count, the time window and the API's ts
// limits, Zipf skew, the daily rhythm, sessions with reports every 5–15 s,
// and every event kind.
func TestGenerateShape(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 10, 15, 30, 0, 0, time.UTC)
	cfg := GenConfig{Events: 50_000, Users: 2000, Items: 500, Days: 7, Now: now, Seed: 3, Loc: time.UTC}
	evs := generate(cfg)
	if len(evs) != cfg.Events {
		t.Fatalf("%d events, want %d", len(evs), cfg.Events)
	}
	if again := generate(cfg); !reflect.DeepEqual(evs, again) {
		t.Fatal("the same config generated different events")
	}
	oldest := time.Date(2026, 3, 4, 0, 0, 0, 0, time.UTC).UnixMilli()
	perUser := map[uint64]int{}
	perHour := [24]int{}
	kinds := map[ingest.Type]int{}
	type sk struct{ user, item uint64 }
	lastReport := map[sk]int64{}
	for _, e := range evs {
		if e.TS < oldest || e.TS > now.UnixMilli() {
			t.Fatalf("event at %s outside [%s, %s]", time.UnixMilli(e.TS).UTC(), time.UnixMilli(oldest).UTC(), now)
		}
		if e.UserID < 1 || e.UserID > uint64(cfg.Users) {
			t.Fatalf("user %d outside 1..%d", e.UserID, cfg.Users)
		}
		perUser[e.UserID]++
		perHour[time.UnixMilli(e.TS).UTC().Hour()]++
		kinds[e.Type]++
		switch e.Type {
		case ingest.TypeProgress:
			if e.ItemID < 1 || e.ItemID > uint64(cfg.Items) || e.Biz != ItemOf(e.ItemID).Biz || e.DurationMs != ItemOf(e.ItemID).DurationMs || e.PositionMs > e.DurationMs {
				t.Fatalf("progress event does not match its catalog item: %+v", e)
			}
			k := sk{e.UserID, e.ItemID}
			if prev, ok := lastReport[k]; ok && e.TS > prev && e.TS-prev < 5000 {
				t.Fatalf("reports of one session %d ms apart, want 5–15 s: %+v", e.TS-prev, e)
			}
			lastReport[k] = e.TS
		case ingest.TypeGift:
			if e.RoomID == 0 || e.AnchorID != AnchorOf(e.RoomID) || e.Value == 0 {
				t.Fatalf("gift without room, anchor or value: %+v", e)
			}
		case ingest.TypeSkip:
			if e.StationID == 0 {
				t.Fatalf("skip without a station: %+v", e)
			}
		}
	}
	for _, k := range []ingest.Type{ingest.TypeProgress, ingest.TypePlay, ingest.TypeSkip, ingest.TypeLike, ingest.TypeGift, ingest.TypeDanmaku} {
		if kinds[k] == 0 {
			t.Errorf("no %s events", k)
		}
	}
	// Zipf: the busiest 1 % of users send far more than 1 % of events.
	counts := slices.Sorted(func(yield func(int) bool) {
		for _, n := range perUser {
			if !yield(n) {
				return
			}
		}
	})
	top := 0
	for _, n := range counts[len(counts)-cfg.Users/100:] {
		top += n
	}
	if share := float64(top) / float64(len(evs)); share < 0.1 {
		t.Errorf("the busiest 1%% of users send %.1f%% of events, want a Zipf skew (>= 10%%)", 100*share)
	}
	// the rhythm: the evening peak is several times the small hours
	if evening, night := perHour[20]+perHour[21], perHour[3]+perHour[4]; evening < 4*night {
		t.Errorf("20–22 h has %d events, 3–5 h %d: want a daily rhythm", evening, night)
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	ok := Config{Target: "http://x", Secret: []byte("s"), Gen: GenConfig{Events: 10}}
	f := func(mod func(*Config), want string) {
		t.Helper()
		c := ok
		mod(&c)
		err := c.validate()
		if want == "" && err != nil || want != "" && (err == nil || !strings.Contains(err.Error(), want)) {
			t.Errorf("validate = %v, want an error naming %q", err, want)
		}
	}
	f(func(*Config) {}, "")
	f(func(c *Config) { c.Gen.Events = 0 }, "--events")
	f(func(c *Config) { c.Gen.Days = 30 }, "--days")
	f(func(c *Config) { c.Rate = -1 }, "--rate")
	f(func(c *Config) { c.Duration = -time.Second }, "--duration")
	f(func(c *Config) { c.Gen.Users = -1 }, "--users")
	f(func(c *Config) { c.Target = "" }, "target")
}
