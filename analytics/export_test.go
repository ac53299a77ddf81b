package analytics

import (
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/onair/onair/ingest"
)

// SeedPageTraffic loads a little traffic of today and the last days into
// db, for the tests that serve the analytics routes through api (package
// analytics_test: api imports analytics, so they cannot be in it).
func SeedPageTraffic(t *testing.T, ch driver.Conn, db string) {
	t.Helper()
	now := serverNow(t, ch)
	var evs []ev
	for d := range 5 {
		at := now.Add(-time.Duration(d) * 24 * time.Hour)
		for u := range uint64(3 + d) {
			evs = append(evs, ev{typ: ingest.TypePlay, user: u + 1, biz: ingest.BizAudio, item: 10 + u, at: at, listened: 600_000})
		}
		evs = append(evs, ev{typ: ingest.TypePlay, user: 50, biz: ingest.BizVideo, item: 7, at: at, listened: 1_200_000})
	}
	evs = append(evs,
		ev{typ: ingest.TypeSkip, user: 1, biz: ingest.BizRadio, item: 3, st: 2, at: now},
		ev{typ: ingest.TypePlay, user: 1, biz: ingest.BizRadio, item: 4, st: 2, at: now, listened: 1000},
		ev{typ: ingest.TypeGift, user: 5, room: 1, v: 100, at: now})
	insert(t, ch, db, evs...)
}
