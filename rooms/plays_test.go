package rooms

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/onair/onair/ingest"
	"github.com/onair/onair/internal/testenv"
)

// playsAt is the pinned clock of the play leaderboard tests: a Wednesday,
// 10:30 UTC.
var playsAt = time.Date(2026, 11, 25, 10, 30, 0, 0, time.UTC)

func TestWindowBounds(t *testing.T) {
	t.Parallel()
	f := func(name string, at time.Time, start, end string) {
		t.Helper()
		s, e, ok := window(name, at)
		if !ok || s.Format(time.RFC3339) != start || e.Format(time.RFC3339) != end {
			t.Fatalf("%s at %s: [%s, %s), want [%s, %s)", name, at, s, e, start, end)
		}
	}
	f("hour", playsAt, "2026-11-25T10:00:00Z", "2026-11-25T11:00:00Z")
	f("day", playsAt, "2026-11-25T00:00:00Z", "2026-11-26T00:00:00Z")
	f("week", playsAt, "2026-11-23T00:00:00Z", "2026-11-30T00:00:00Z")
	sunday := time.Date(2026, 11, 29, 23, 59, 0, 0, time.UTC)
	f("week", sunday, "2026-11-23T00:00:00Z", "2026-11-30T00:00:00Z")
	monday := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	f("week", monday, "2026-11-30T00:00:00Z", "2026-12-07T00:00:00Z")
	if _, _, ok := window("month", playsAt); ok {
		t.Fatal("month is not a window")
	}
}

// TestPlayLeaderboardsWindowsExpiryAndRebuild fills onair.events (the
// rollups follow), refreshes, and checks each window's ranking, that the
// keys expire PlaysGrace after their window ends, and that after Redis
// lost them the refresh loop brings them back from the rollups.
func TestPlayLeaderboardsWindowsExpiryAndRebuild(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 1, nil)
	ch, db := testenv.ClickHouse(t)
	ctx := ctxT(t)
	insertPlays(t, ch, db)
	b, err := New(Config{Redis: w.rdb, Prefix: w.prefix, Kafka: w.kcl, ClickHouse: ch, Database: db,
		Now: func() time.Time { return playsAt }, PlaysCache: time.Millisecond, PlaysRefresh: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.RefreshPlays(ctx); err != nil {
		t.Fatal(err)
	}
	read := func(biz ingest.Biz, win string) string {
		t.Helper()
		items, err := b.Plays(ctx, biz, win, 10)
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprint(items)
	}
	want := map[string]string{
		"audio/hour": "[{1 5}]",
		"audio/day":  "[{1 5} {2 3}]",
		"audio/week": "[{3 7} {1 5} {2 3}]",
		"video/hour": "[{4 2}]",
		"comic/week": "[]",
	}
	check := func() string {
		for k, v := range want {
			biz, win, _ := strings.Cut(k, "/")
			bz, _ := ingest.ParseBiz(biz)
			if got := read(bz, win); got != v {
				return fmt.Sprintf("%s = %s, want %s", k, got, v)
			}
		}
		return ""
	}
	if m := check(); m != "" {
		t.Fatal(m)
	}
	// Each key lives until its window ends, plus PlaysGrace (1 h).
	for win, left := range map[string]time.Duration{"hour": 30 * time.Minute, "day": 13*time.Hour + 30*time.Minute, "week": 4*24*time.Hour + 13*time.Hour + 30*time.Minute} {
		start, _, _ := window(win, playsAt)
		ttl, err := w.rdb.PTTL(ctx, b.playsKey(ingest.BizAudio, win, start)).Result()
		if want := left + time.Hour; err != nil || ttl > want || ttl < want-10*time.Second {
			t.Fatalf("%s key expires in %s (%v), want %s", win, ttl, err, want)
		}
	}
	// Redis loses everything; the refresh loop rebuilds from the rollups.
	keys, _ := w.rdb.Keys(ctx, w.prefix+"*").Result()
	if err := w.rdb.Del(ctx, keys...).Err(); err != nil {
		t.Fatal(err)
	}
	testenv.Wait(t, 5*time.Second, func() bool { return read(ingest.BizAudio, "week") == "[]" }, "the loss to show past the node's cache")
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	go b.Run(runCtx)
	testenv.Wait(t, 20*time.Second, func() bool { return check() == "" }, "rebuild: %s", check())

	// A window that ends now expires on its own (grace 100 ms).
	end := time.Now().Add(3 * time.Second)
	b2, err := New(Config{Redis: w.rdb, Prefix: w.prefix + "x:", Kafka: w.kcl, ClickHouse: ch, Database: db,
		Now: func() time.Time { return playsAt.Truncate(time.Hour).Add(time.Hour - time.Until(end)) }, PlaysGrace: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := b2.RefreshPlays(ctx); err != nil {
		t.Fatal(err)
	}
	key := b2.playsKey(ingest.BizAudio, "hour", playsAt.Truncate(time.Hour))
	if n, _ := w.rdb.Exists(ctx, key).Result(); n != 1 {
		t.Fatal("the hour key was not written")
	}
	testenv.Wait(t, 15*time.Second, func() bool { n, _ := w.rdb.Exists(ctx, key).Result(); return n == 0 }, "the ended hour to expire")
}

// insertPlays fills onair.events (and through it the rollups) around
// playsAt: audio items 1 (5 plays this hour), 2 (3 earlier today), 3 (7
// on Monday), 5 (9 last week); video item 4 (2 this hour); and 20 progress
// reports of audio item 9, which are not plays.
func insertPlays(t *testing.T, ch driver.Conn, db string) {
	t.Helper()
	batch, err := ch.PrepareBatch(context.Background(), "INSERT INTO "+db+".events (event_id, type, user_id, biz, item_id, ts, ts_msec, kafka_partition, kafka_offset, ingested_at)")
	if err != nil {
		t.Fatal(err)
	}
	n := uint64(0)
	add := func(typ, biz string, item uint64, plays int, at time.Time) {
		for range plays {
			n++
			if err := batch.Append(fmt.Sprintf("e%d", n), typ, uint64(1), biz, item, at, uint16(at.UnixMilli()%1000), uint32(0), n, at); err != nil {
				t.Fatal(err)
			}
		}
	}
	add("play", "audio", 1, 5, playsAt.Add(-10*time.Minute))
	add("play", "audio", 2, 3, playsAt.Add(-2*time.Hour))
	add("play", "audio", 3, 7, playsAt.Add(-48*time.Hour))
	add("play", "audio", 5, 9, playsAt.Add(-7*24*time.Hour)) // last week
	add("play", "video", 4, 2, playsAt.Add(-10*time.Minute))
	add("progress", "audio", 9, 20, playsAt.Add(-10*time.Minute)) // reports are not plays
	if err := batch.Send(); err != nil {
		t.Fatal(err)
	}
}
