package lifecycle

import (
	"context"
	"testing"
	"time"

	"github.com/onair/onair/internal/testenv"
)

// TestRetentionDropsWholeOldMonths: with a 90-day retention on 2026-12-07,
// the months that ended before 2026-09-08 go from events and a rollup, the
// later ones stay, and the highest Kafka offset of the dropped rows is kept
// as the aggregator's resume point.
func TestRetentionDropsWholeOldMonths(t *testing.T) {
	ch, db := testenv.ClickHouse(t)
	ctx := context.Background()
	b, err := ch.PrepareBatch(ctx, "INSERT INTO "+db+".events (type, biz, ts, user_id, item_id, kafka_partition, kafka_offset, ingested_at)")
	if err != nil {
		t.Fatal(err)
	}
	// 2026-05 (old, holds partition 3's highest offset), 2026-08 (ends
	// before the cut-off), 2026-09 (straddles it: kept), 2026-12 (now).
	for _, r := range []struct {
		at   string
		off  uint64
		part uint32
	}{{"2026-05-10", 900, 3}, {"2026-08-31", 10, 1}, {"2026-09-01", 11, 1}, {"2026-12-01", 12, 1}} {
		at, _ := time.Parse("2006-01-02", r.at)
		if err := b.Append("play", "audio", at, uint64(42), uint64(7), r.part, r.off, at); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
	now, _ := time.Parse(time.RFC3339, "2026-12-07T12:00:00Z")
	r, err := NewRetention(RetentionConfig{ClickHouse: ch, Database: db, Keep: 90 * 24 * time.Hour, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	dropped, err := r.Once(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[Dropped]bool{{"events", "202605"}: true, {"events", "202608"}: true,
		{"item_plays_daily", "202605"}: true, {"item_plays_daily", "202608"}: true,
		{"item_plays_hourly", "202605"}: true, {"item_plays_hourly", "202608"}: true,
		{"dau_daily", "202605"}: true, {"dau_daily", "202608"}: true,
		{"user_daily", "202605"}: true, {"user_daily", "202608"}: true,
		{"user_item_daily", "202605"}: true, {"user_item_daily", "202608"}: true}
	got := map[Dropped]bool{}
	for _, d := range dropped {
		got[d] = true
	}
	for d := range want {
		if !got[d] {
			t.Errorf("month %s of %s not dropped; dropped %v", d.Month, d.Table, dropped)
		}
	}
	for d := range got {
		if !want[d] {
			t.Errorf("month %s of %s dropped, want kept", d.Month, d.Table)
		}
	}
	var months []string
	rows, err := ch.Query(ctx, "SELECT toString(toYYYYMM(ingested_at)) AS m FROM "+db+".events ORDER BY m")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var m string
		_ = rows.Scan(&m)
		months = append(months, m)
	}
	rows.Close()
	if len(months) != 2 || months[0] != "202609" || months[1] != "202612" {
		t.Fatalf("events left in months %v, want [202609 202612]", months)
	}
	var kept uint64
	if err := ch.QueryRow(ctx, "SELECT max(offset) FROM "+db+".aggregate_offsets WHERE topic = 'events' AND sink = 'events' AND partition = 3").Scan(&kept); err != nil {
		t.Fatal(err)
	}
	if kept != 900 {
		t.Fatalf("resume point of partition 3 kept as %d, want 900 (the dropped month held it)", kept)
	}
	// again: nothing left to drop
	if again, err := r.Once(ctx); err != nil || len(again) != 0 {
		t.Fatalf("second run dropped %v, %v; want nothing", again, err)
	}
}

func TestRetentionRefusesShortRetention(t *testing.T) {
	ch, db := testenv.ClickHouse(t)
	if _, err := NewRetention(RetentionConfig{ClickHouse: ch, Database: db, Keep: 30 * 24 * time.Hour}); err == nil {
		t.Fatal("a 30-day retention was accepted; it would drop the month being written")
	}
}
