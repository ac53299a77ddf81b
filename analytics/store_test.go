package analytics

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/onair/onair/ingest"
	"github.com/onair/onair/internal/refusal"
	"github.com/onair/onair/internal/testenv"
)

// ev is one row of onair.events for a test.
type ev struct {
	typ               ingest.Type
	user, item, st    uint64
	biz               ingest.Biz
	at                time.Time
	listened, room, v uint64
}

// insert writes evs into db.events as one block, with the aggregator's
// columns (aggregate/clickhouse.go), so the rollups' views run as in
// production.
func insert(t *testing.T, ch driver.Conn, db string, evs ...ev) {
	t.Helper()
	b, err := ch.PrepareBatch(context.Background(), "INSERT INTO "+db+".events (type, user_id, biz, item_id, ts, ts_msec, listened_ms, station_id, room_id, value, ingested_at)")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		if err := b.Append(e.typ.String(), e.user, e.biz.String(), e.item, e.at, uint16(e.at.UnixMilli()%1000), e.listened, e.st, e.room, e.v, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
}

// catalog writes item -> (category, tags) rows; version orders retags.
func catalog(t *testing.T, ch driver.Conn, db string, version uint64, items map[uint64][2]any) {
	t.Helper()
	b, err := ch.PrepareBatch(context.Background(), "INSERT INTO "+db+".catalog (item_id, biz, category, tags, version)")
	if err != nil {
		t.Fatal(err)
	}
	for id, ct := range items {
		if err := b.Append(id, "audio", ct[0], ct[1], version); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
}

// serverNow returns the ClickHouse server's clock, which the windows use.
func serverNow(t *testing.T, ch driver.Conn) time.Time {
	t.Helper()
	var now time.Time
	if err := ch.QueryRow(context.Background(), "SELECT now()").Scan(&now); err != nil {
		t.Fatal(err)
	}
	return now
}

func TestPopularityWindows(t *testing.T) {
	t.Parallel()
	ch, db := testenv.ClickHouse(t)
	s, err := New(Config{ClickHouse: ch, Database: db})
	if err != nil {
		t.Fatal(err)
	}
	now := serverNow(t, ch)
	hour := now.Truncate(time.Hour)
	if now.Sub(hour) < time.Minute || now.Sub(hour) > 58*time.Minute {
		t.Skip("too close to the top of the hour for a stable 'this hour'") // rare: the hour would change mid-test
	}
	day := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, now.Location())
	play := func(item uint64, at time.Time, listened uint64) ev {
		return ev{typ: ingest.TypePlay, user: item + 100, biz: ingest.BizAudio, item: item, at: at, listened: listened}
	}
	var evs []ev
	// this hour: item 1 ×3, item 2 ×2; earlier today: item 3 ×4 (if today
	// has an earlier hour); 3 days ago: item 4 ×6; 10 days ago: item 5 ×9
	for range 3 {
		evs = append(evs, play(1, hour.Add(10*time.Second), 1000))
	}
	evs = append(evs, play(2, hour, 500), play(2, hour, 500), ev{typ: ingest.TypeLike, user: 1, biz: ingest.BizAudio, item: 2, at: hour})
	earlier := hour.Add(-time.Hour)
	if earlier.Before(day) {
		earlier = hour // the first hour of the day: item 3 plays this hour too
	}
	for range 4 {
		evs = append(evs, play(3, earlier, 10))
	}
	for range 6 {
		evs = append(evs, play(4, day.AddDate(0, 0, -3), 10))
	}
	for range 9 {
		evs = append(evs, play(5, day.AddDate(0, 0, -10), 10))
	}
	evs = append(evs, ev{typ: ingest.TypePlay, user: 9, biz: ingest.BizVideo, item: 1, at: hour}) // another biz
	insert(t, ch, db, evs...)

	ctx := context.Background()
	f := func(w Window, limit int, want ...ItemStat) {
		t.Helper()
		got, err := s.Popularity(ctx, ingest.BizAudio, w, limit)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("Popularity(audio, %s, %d) = %+v, want %+v", w, limit, got, want)
		}
	}
	hourWant := []ItemStat{{ItemID: 1, Plays: 3, ListenedMs: 3000}, {ItemID: 2, Plays: 2, ListenedMs: 1000, Likes: 1}}
	if earlier.Equal(hour) {
		hourWant = []ItemStat{{ItemID: 3, Plays: 4, ListenedMs: 40}, hourWant[0], hourWant[1]}
	}
	f(WindowHour, 10, hourWant...)
	f(WindowDay, 2, ItemStat{ItemID: 3, Plays: 4, ListenedMs: 40}, ItemStat{ItemID: 1, Plays: 3, ListenedMs: 3000})
	f(WindowLast7Days, 10, ItemStat{ItemID: 4, Plays: 6, ListenedMs: 60}, ItemStat{ItemID: 3, Plays: 4, ListenedMs: 40},
		ItemStat{ItemID: 1, Plays: 3, ListenedMs: 3000}, ItemStat{ItemID: 2, Plays: 2, ListenedMs: 1000, Likes: 1})

	for _, bad := range []func() error{
		func() error { _, err := s.Popularity(ctx, ingest.BizAudio, "month", 10); return err },
		func() error { _, err := s.Popularity(ctx, ingest.BizAudio, WindowDay, 0); return err },
		func() error { _, err := s.Popularity(ctx, ingest.BizNone, WindowDay, 10); return err },
	} {
		if e, ok := refusal.As(bad()); !ok || e.Kind != refusal.Invalid {
			t.Errorf("bad argument: err = %v, want an Invalid refusal", e)
		}
	}
}

func TestUserEngagement(t *testing.T) {
	t.Parallel()
	ch, db := testenv.ClickHouse(t)
	s, err := New(Config{ClickHouse: ch, Database: db})
	if err != nil {
		t.Fatal(err)
	}
	catalog(t, ch, db, 1, map[uint64][2]any{
		1: {"news", []string{"tech", "finance"}},
		2: {"music", []string{"jazz"}},
		3: {"news", []string{"tech"}},
	})
	catalog(t, ch, db, 2, map[uint64][2]any{2: {"music", []string{"jazz", "pop"}}}) // retag: the latest version joins
	now := serverNow(t, ch)
	e := func(typ ingest.Type, user, item uint64, ago time.Duration, listened uint64) ev {
		return ev{typ: typ, user: user, biz: ingest.BizAudio, item: item, at: now.Add(-ago), listened: listened, st: 1}
	}
	insert(t, ch, db,
		e(ingest.TypePlay, 42, 1, time.Hour, 120_000),       // tech, finance, news: +2 min +1 play
		e(ingest.TypePlay, 42, 3, time.Hour, 60_000),        // tech, news: +1 min +1 play
		e(ingest.TypeSkip, 42, 2, time.Hour, 0),             // jazz, pop, music: a skip (−2)
		e(ingest.TypePlay, 42, 2, 40*24*time.Hour, 600_000), // too old for 30 days
		e(ingest.TypeLike, 42, 2, time.Hour, 0),             // likes are not in user_affinity
		e(ingest.TypePlay, 42, 99, time.Hour, 60_000),       // not in the catalog
		e(ingest.TypePlay, 7, 1, time.Hour, 60_000),         // another user
	)
	got, err := s.UserEngagement(context.Background(), 42, 30, 10)
	if err != nil {
		t.Fatal(err)
	}
	want := []Engagement{
		{Kind: "category", Key: "news", Plays: 2, ListenedMs: 180_000, Score: 5},
		{Kind: "tag", Key: "tech", Plays: 2, ListenedMs: 180_000, Score: 5},
		{Kind: "tag", Key: "finance", Plays: 1, ListenedMs: 120_000, Score: 3},
		{Kind: "category", Key: "music", Skips: 1, Score: -2},
		{Kind: "tag", Key: "jazz", Skips: 1, Score: -2},
		{Kind: "tag", Key: "pop", Skips: 1, Score: -2},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("UserEngagement(42, 30 days) =\n%+v\nwant\n%+v", got, want)
	}
	got, err = s.UserEngagement(context.Background(), 42, 30, 2)
	if err != nil || len(got) != 2 || got[1].Key != "tech" {
		t.Fatalf("UserEngagement limit 2 = %+v, %v; want the best two", got, err)
	}
	if _, err := s.UserEngagement(context.Background(), 0, 30, 10); err == nil || err.(*refusal.Error).Field != "user" {
		t.Errorf("user 0: err = %v, want an Invalid refusal naming user", err)
	}
	stations, err := s.Stations(context.Background(), 7)
	if err != nil {
		t.Fatal(err)
	}
	if want := []StationStat{{StationID: 1, Plays: 4, Skips: 1, SkipRate: 0.2}}; !reflect.DeepEqual(stations, want) {
		t.Fatalf("Stations(7) = %+v, want %+v", stations, want)
	}
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	if _, err := New(Config{}); err == nil {
		t.Error("New without ClickHouse succeeded")
	}
	ch, _ := testenv.ClickHouse(t)
	if _, err := New(Config{ClickHouse: ch, Database: "bad name;"}); err == nil {
		t.Error("New with a bad database name succeeded")
	}
}
