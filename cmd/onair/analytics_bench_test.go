package main

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/onair/onair/internal/chdb"
)

// TestDocumentedQueryLatency is the benchmark behind BENCHMARKS.md's
// "Analytics" rows: on a running ClickHouse named by
// ONAIR_ANALYTICS_BENCH_ADDR (database ONAIR_ANALYTICS_BENCH_DB, default
// onair), filled by `onair seed`, it runs every query of docs/analytics.md
// 5 times and prints the median and the spread, with `SELECT 1` and a full
// scan of events (count of a column) as same-run baselines, and the bytes
// per event on disk. Skipped without the variable.
func TestDocumentedQueryLatency(t *testing.T) {
	addr := os.Getenv("ONAIR_ANALYTICS_BENCH_ADDR")
	if addr == "" {
		t.Skip("set ONAIR_ANALYTICS_BENCH_ADDR to a seeded ClickHouse (see BENCHMARKS.md)")
	}
	db := cmp.Or(os.Getenv("ONAIR_ANALYTICS_BENCH_DB"), "onair")
	doc, err := os.ReadFile("../../docs/analytics.md")
	if err != nil {
		t.Fatal(err)
	}
	ch, err := chdb.Open(chdb.Config{Addr: addr, Database: db})
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	ctx := context.Background()
	var rows, bytes uint64
	if err := ch.QueryRow(ctx, "SELECT sum(rows), sum(bytes_on_disk) FROM system.parts WHERE database = ? AND table = 'events' AND active", db).Scan(&rows, &bytes); err != nil {
		t.Fatal(err)
	}
	fmt.Printf("events: %d rows, %d bytes on disk, %.2f bytes/event\n\n", rows, bytes, float64(bytes)/float64(rows))
	queries := [][2]string{{"baseline: SELECT 1", "SELECT 1"}, {"baseline: count(user_id) of events", "SELECT count(user_id) FROM onair.events"}}
	for _, m := range docQuery.FindAllStringSubmatch(string(doc), -1) {
		queries = append(queries, [2]string{m[1], m[2]})
	}
	fmt.Println("| query | p50 ms | min–max ms (5 runs) | rows |")
	fmt.Println("| --- | --- | --- | --- |")
	for _, q := range queries {
		sql := strings.ReplaceAll(q[1], "onair.", db+".")
		var ms []float64
		n := 0
		for range 5 {
			start := time.Now()
			r, err := ch.Query(ctx, sql)
			if err != nil {
				t.Fatalf("%s: %v", q[0], err)
			}
			for n = 0; r.Next(); n++ {
			}
			r.Close()
			if err := r.Err(); err != nil {
				t.Fatalf("%s: %v", q[0], err)
			}
			ms = append(ms, float64(time.Since(start).Microseconds())/1000)
		}
		slices.Sort(ms)
		fmt.Printf("| %s | %.1f | %.1f–%.1f | %d |\n", q[0], ms[2], ms[0], ms[4], n)
	}
}
