package migrate_test

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/onair/onair/internal/migrate"
	"github.com/onair/onair/internal/testenv"
)

// ev is one row of events with the columns the rollups read.
type ev struct {
	typ, biz                       string
	user, item                     uint64
	ts                             time.Time
	pos, listened, room, anchor, v uint64
}

// insertEvents writes evs as one block, the way the aggregator does: a
// batch with an explicit column list (Exec of INSERT ... VALUES hangs on
// ClickHouse 18.16).
func insertEvents(t *testing.T, ctx context.Context, conn driver.Conn, db string, offset uint64, evs ...ev) {
	t.Helper()
	b, err := conn.PrepareBatch(ctx, "INSERT INTO "+db+".events (event_id, type, user_id, biz, item_id, ts, ts_msec, "+
		"position_ms, duration_ms, listened_ms, room_id, anchor_id, gift_id, value, kafka_partition, kafka_offset, ingested_at)")
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range evs {
		var gift uint64
		if e.typ == "gift" {
			gift = 2
		}
		o := offset + uint64(i)
		if err := b.Append(fmt.Sprintf("e%d", o), e.typ, e.user, e.biz, e.item, e.ts, uint16(e.ts.UnixMilli()%1000),
			e.pos, uint64(600_000), e.listened, e.room, e.anchor, gift, e.v, uint32(0), o, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
}

// rows runs q and returns every row as its columns joined by spaces,
// so expectations read like the query's output.
func rows(t *testing.T, ctx context.Context, conn driver.Conn, q string, scan func() []any) []string {
	t.Helper()
	r, err := conn.Query(ctx, q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer r.Close()
	var out []string
	for r.Next() {
		dst := scan()
		if err := r.Scan(dst...); err != nil {
			t.Fatal(err)
		}
		var s []any
		for _, d := range dst {
			s = append(s, reflect.ValueOf(d).Elem().Interface())
		}
		out = append(out, strings.TrimSuffix(fmt.Sprintln(s...), "\n"))
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestRollups(t *testing.T) {
	t.Parallel()
	conn, db := testenv.ClickHouse(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// Buckets are in the server's time zone, so the test builds its times there.
	var tz string
	if err := conn.QueryRow(ctx, "SELECT timezone()").Scan(&tz); err != nil {
		t.Fatal(err)
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		t.Fatal(err)
	}
	at := func(day, h, m int) time.Time { return time.Date(2026, 1, day, h, m, 0, 0, loc) }

	// Two blocks, so the rollups hold several unmerged parts and the reads
	// below must sum them.
	insertEvents(t, ctx, conn, db, 0,
		ev{typ: "progress", biz: "audio", user: 1, item: 10, ts: at(5, 10, 5), pos: 1000},
		ev{typ: "progress", biz: "audio", user: 1, item: 10, ts: at(5, 10, 10), pos: 5000},
		ev{typ: "play", biz: "audio", user: 1, item: 10, ts: at(5, 10, 30), listened: 30_000},
		ev{typ: "like", biz: "audio", user: 1, item: 10, ts: at(5, 10, 31)},
		ev{typ: "gift", user: 2, ts: at(5, 12, 0), room: 5, anchor: 8, v: 200},
		ev{typ: "danmaku", user: 4, ts: at(5, 12, 1), room: 5},
	)
	insertEvents(t, ctx, conn, db, 100,
		ev{typ: "progress", biz: "audio", user: 1, item: 10, ts: at(5, 10, 20), pos: 9000},
		ev{typ: "play", biz: "audio", user: 2, item: 10, ts: at(5, 10, 40), listened: 20_000},
		ev{typ: "play", biz: "audio", user: 1, item: 10, ts: at(5, 11, 10), listened: 5_000},
		ev{typ: "skip", biz: "radio", user: 1, item: 20, ts: at(5, 11, 15)},
		ev{typ: "progress", biz: "video", user: 2, item: 11, ts: at(6, 9, 0), pos: 3000},
		ev{typ: "gift", user: 2, ts: at(5, 12, 30), room: 5, anchor: 8, v: 100},
		ev{typ: "gift", user: 3, ts: at(5, 23, 59), room: 5, anchor: 8, v: 50},
		ev{typ: "gift", user: 3, ts: at(6, 0, 0), room: 5, anchor: 8, v: 7},
	)

	check := func(name string, got []string, want ...string) {
		t.Helper()
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\n got %q\nwant %q", name, got, want)
		}
	}
	type u64 = uint64
	items := func() []any {
		return []any{new(string), new(time.Time), new(u64), new(u64), new(u64), new(u64), new(u64), new(u64)}
	}
	// time.Time values print in the driver's zone: build expectations the same way.
	var probe time.Time
	if err := conn.QueryRow(ctx, "SELECT toDateTime(?)", at(5, 10, 0).Unix()).Scan(&probe); err != nil {
		t.Fatal(err)
	}
	inZone := func(tm time.Time) string { return tm.In(probe.Location()).String() }

	check("item_plays_hourly", rows(t, ctx, conn, "SELECT toString(biz), hour, item_id, sum(plays), sum(reports), sum(listened_ms), sum(likes), sum(skips) FROM "+db+
		".item_plays_hourly GROUP BY biz, hour, item_id ORDER BY biz, hour, item_id", items),
		"audio "+inZone(at(5, 10, 0))+" 10 2 3 50000 1 0",
		"audio "+inZone(at(5, 11, 0))+" 10 1 0 5000 0 0",
		"video "+inZone(at(6, 9, 0))+" 11 0 1 0 0 0",
		"radio "+inZone(at(5, 11, 0))+" 20 0 0 0 0 1",
	)
	check("item_plays_daily", rows(t, ctx, conn, "SELECT toString(biz), toDateTime(day), item_id, sum(plays), sum(reports), sum(listened_ms), sum(likes), sum(skips) FROM "+db+
		".item_plays_daily GROUP BY biz, day, item_id ORDER BY biz, day, item_id", items),
		"audio "+inZone(at(5, 0, 0))+" 10 3 3 55000 1 0",
		"video "+inZone(at(6, 0, 0))+" 11 0 1 0 0 0",
		"radio "+inZone(at(5, 0, 0))+" 20 0 0 0 0 1",
	)
	dau := func() []any { return []any{new(string), new(string), new(u64)} }
	check("dau_daily per biz", rows(t, ctx, conn, "SELECT toString(day), toString(biz), uniqMerge(users) FROM "+db+
		".dau_daily GROUP BY day, biz ORDER BY day, biz", dau),
		"2026-01-05  3", // gift and danmaku users 2, 3, 4
		"2026-01-05 audio 2",
		"2026-01-05 radio 1",
		"2026-01-06  1",
		"2026-01-06 video 1",
	)
	check("dau_daily all", rows(t, ctx, conn, "SELECT toString(day), 'all', uniqMerge(users) FROM "+db+
		".dau_daily GROUP BY day ORDER BY day", dau),
		"2026-01-05 all 4",
		"2026-01-06 all 2",
	)
	gifts := func() []any { return []any{new(u64), new(string), new(u64), new(u64), new(u64), new(u64)} }
	check("room_gifts_daily", rows(t, ctx, conn, "SELECT room_id, toString(day), anchor_id, user_id, sum(value), sum(gifts) FROM "+db+
		".room_gifts_daily GROUP BY room_id, day, anchor_id, user_id ORDER BY room_id, day, anchor_id, user_id", gifts),
		"5 2026-01-05 8 2 300 2",
		"5 2026-01-05 8 3 50 1",
		"5 2026-01-06 8 3 7 1",
	)

	// After merges the raw rows are the sums: nothing is counted twice.
	for _, tbl := range []string{"item_plays_hourly", "item_plays_daily", "dau_daily", "room_gifts_daily"} {
		if err := conn.Exec(ctx, "OPTIMIZE TABLE "+db+"."+tbl+" FINAL"); err != nil {
			t.Fatal(err)
		}
	}
	check("item_plays_daily merged", rows(t, ctx, conn, "SELECT toString(biz), toDateTime(day), item_id, plays, reports, listened_ms, likes, skips FROM "+db+
		".item_plays_daily WHERE biz = 'audio'", items),
		"audio "+inZone(at(5, 0, 0))+" 10 3 3 55000 1 0",
	)

	// Applying again is a no-op: the views are not created twice.
	if v, err := migrate.Apply(ctx, conn, db, nil); err != nil || len(v) != 0 {
		t.Fatalf("second Apply: %v, %v", v, err)
	}
	var views uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM system.tables WHERE database = ? AND engine = 'MaterializedView'", db).Scan(&views); err != nil {
		t.Fatal(err)
	}
	if views != 10 {
		t.Fatalf("%d materialized views, want 10 (4 of 0004, 6 of 0041)", views)
	}
}
