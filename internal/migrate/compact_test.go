package migrate_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/onair/onair/internal/migrate"
)

// TestCompactEventsKeepsRows upgrades a database that holds events in the
// 0001 layout: 0040 must copy every row (ids, ms timestamps and Kafka
// offsets kept, so the aggregator resumes where it was), and the rollups'
// views must count inserts into the new table.
func TestCompactEventsKeepsRows(t *testing.T) {
	t.Parallel()
	conn, db := freshDB(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	all, err := migrate.All()
	if err != nil {
		t.Fatal(err)
	}
	// apply what came before 0040 by hand, as an older onair did
	if err := conn.Exec(ctx, "CREATE DATABASE "+db); err != nil {
		t.Fatal(err)
	}
	if err := conn.Exec(ctx, "CREATE TABLE "+db+".schema_migrations (version UInt32, name String, applied_at DateTime DEFAULT now()) ENGINE = MergeTree ORDER BY version"); err != nil {
		t.Fatal(err)
	}
	for _, m := range all {
		if m.Version >= 40 {
			break
		}
		for _, stmt := range m.SQL {
			if err := conn.Exec(ctx, strings.ReplaceAll(stmt, "{db}", db)); err != nil {
				t.Fatalf("%s: %v", m.Name, err)
			}
		}
		if err := conn.Exec(ctx, "INSERT INTO "+db+".schema_migrations (version, name) SELECT ?, ?", uint32(m.Version), m.Name); err != nil {
			t.Fatal(err)
		}
	}
	b, err := conn.PrepareBatch(ctx, "INSERT INTO "+db+".events (event_id, type, user_id, biz, item_id, ts, ts_ms, kafka_partition, kafka_offset, ingested_at)")
	if err != nil {
		t.Fatal(err)
	}
	at := time.UnixMilli(1_790_000_000_123)
	for i, id := range []string{"old-1", "old-2", "1wwcwaxmpxkz"} {
		if err := b.Append(id, "play", uint64(7), "audio", uint64(10+i), at, uint64(at.UnixMilli()), uint32(i%2), uint64(100+i), at); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}

	applied, err := migrate.Apply(ctx, conn, db, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(applied) == 0 || applied[0] != 40 {
		t.Fatalf("applied %v, want 40 and later", applied)
	}
	rows, err := conn.Query(ctx, "SELECT event_id, ts_ms, kafka_partition, kafka_offset FROM "+db+".events ORDER BY event_id")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var id string
		var ms, off uint64
		var p uint32
		if err := rows.Scan(&id, &ms, &p, &off); err != nil {
			t.Fatal(err)
		}
		got = append(got, strings.Join([]string{id, strconv.FormatUint(ms, 10), strconv.FormatUint(uint64(p), 10), strconv.FormatUint(off, 10)}, " "))
	}
	rows.Close()
	want := []string{"1wwcwaxmpxkz 1790000000123 0 102", "old-1 1790000000123 0 100", "old-2 1790000000123 1 101"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("events after 0040:\n%v\nwant\n%v", got, want)
	}
	var old uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM system.tables WHERE database = ? AND name IN ('events_0001', 'events_compact')", db).Scan(&old); err != nil || old != 0 {
		t.Fatalf("%d leftover tables (%v), want none", old, err)
	}
	// the views follow the new table
	if err := conn.Exec(ctx, "INSERT INTO "+db+".events (type, user_id, biz, item_id, ts) SELECT 'play', 8, 'audio', 10, now()"); err != nil {
		t.Fatal(err)
	}
	var plays uint64
	if err := conn.QueryRow(ctx, "SELECT sum(plays) FROM "+db+".item_plays_daily WHERE day = today()").Scan(&plays); err != nil || plays != 1 {
		t.Fatalf("item_plays_daily counts %d plays of today (%v), want the 1 inserted after 0040", plays, err)
	}
}
