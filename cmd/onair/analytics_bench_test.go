package main

import (
	"cmp"
	"context"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/onair/onair/internal/chdb"
)

// BenchmarkDocumentedQueries is the benchmark behind BENCHMARKS.md's
// "Analytics" rows: on a running ClickHouse named by
// ONAIR_ANALYTICS_BENCH_ADDR (database ONAIR_ANALYTICS_BENCH_DB, default
// onair), filled by `onair seed`, it runs every query of docs/analytics.md
// as a sub-benchmark, with `SELECT 1` and a full scan of events (count of a
// column) as same-run baselines, and logs the bytes per event on disk.
// Beside ns/op each reports the median, the fastest and the slowest run
// (p50-ms, min-ms, max-ms: the spread is most of what ClickHouse latency
// says) and the rows returned. Skipped without the variable. BENCHMARKS.md
// runs it with -benchtime 5x.
func BenchmarkDocumentedQueries(b *testing.B) {
	addr := os.Getenv("ONAIR_ANALYTICS_BENCH_ADDR")
	if addr == "" {
		b.Skip("set ONAIR_ANALYTICS_BENCH_ADDR to a seeded ClickHouse (see BENCHMARKS.md)")
	}
	db := cmp.Or(os.Getenv("ONAIR_ANALYTICS_BENCH_DB"), "onair")
	doc, err := os.ReadFile("../../docs/analytics.md")
	if err != nil {
		b.Fatal(err)
	}
	ch, err := chdb.Open(chdb.Config{Addr: addr, Database: db})
	if err != nil {
		b.Fatal(err)
	}
	defer ch.Close()
	ctx := context.Background()
	var rows, bytes uint64
	if err := ch.QueryRow(ctx, "SELECT sum(rows), sum(bytes_on_disk) FROM system.parts WHERE database = ? AND table = 'events' AND active", db).Scan(&rows, &bytes); err != nil {
		b.Fatal(err)
	}
	b.Logf("events: %d rows, %d bytes on disk, %.2f bytes/event", rows, bytes, float64(bytes)/float64(rows))
	queries := [][2]string{{"baseline-select-1", "SELECT 1"}, {"baseline-count-user_id-of-events", "SELECT count(user_id) FROM onair.events"}}
	for _, m := range docQuery.FindAllStringSubmatch(string(doc), -1) {
		queries = append(queries, [2]string{m[1], m[2]})
	}
	for _, q := range queries {
		sql := strings.ReplaceAll(q[1], "onair.", db+".")
		b.Run(q[0], func(b *testing.B) {
			var ms []float64
			n := 0
			for b.Loop() {
				start := time.Now()
				r, err := ch.Query(ctx, sql)
				if err != nil {
					b.Fatal(err)
				}
				for n = 0; r.Next(); n++ {
				}
				r.Close()
				if err := r.Err(); err != nil {
					b.Fatal(err)
				}
				ms = append(ms, float64(time.Since(start).Microseconds())/1000)
			}
			slices.Sort(ms)
			b.ReportMetric(ms[len(ms)/2], "p50-ms")
			b.ReportMetric(ms[0], "min-ms")
			b.ReportMetric(ms[len(ms)-1], "max-ms")
			b.ReportMetric(float64(n), "rows")
		})
	}
}
