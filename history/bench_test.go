package history

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/onair/onair/ingest"
)

func fill(tb testing.TB, e *env, uid uint64, n int) {
	tb.Helper()
	ups := make([]Update, 0, n)
	for i := 1; i <= n; i++ {
		ups = append(ups, Update{UserID: uid, Biz: ingest.Biz(1 + i%6), ItemID: uint64(1_000_000 + i*7919),
			PositionMs: uint64(i) * 61_000, DurationMs: 1_800_000, TS: t0 + int64(i)*1000, Device: "ios-7f3a"})
	}
	for len(ups) > 0 {
		k := min(len(ups), 500)
		if _, err := e.s.Apply(ctxT(tb), ups[:k]); err != nil {
			tb.Fatal(err)
		}
		ups = ups[k:]
	}
}

// memoryPerEntry fills user uid with n entries and returns what its
// timeline ZSET and progress HASH take in Redis (MEMORY USAGE, every element
// sampled), in bytes per entry.
func memoryPerEntry(tb testing.TB, e *env, uid uint64, n int) float64 {
	tb.Helper()
	fill(tb, e, uid, n)
	k := e.s.keys(uid)
	var total int64
	for _, key := range []string{k[0], k[1]} {
		b, err := e.rdb.MemoryUsage(ctxT(tb), key, 0).Result()
		if err != nil {
			tb.Fatal(err)
		}
		total += b
	}
	return float64(total) / float64(n)
}

// TestMemoryPerEntry: one history entry (the timeline ZSET and the
// progress HASH together, from MEMORY USAGE) costs at most what the
// capacity plan counts on. docs/capacity.md sizes Redis at ~150 bytes per
// entry (15 KB for a user's 100 entries, in Redis's compact listpack
// encoding, up to 128 entries); past 128 entries Redis switches to a
// skiplist and a hash table, measured at ~215 bytes, bounded here at 300.
// The stored value is the documented "ts,pos,dur,flags,posts,device".
func TestMemoryPerEntry(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false, 0)
	for _, c := range []struct {
		n   int
		max float64
	}{{100, 150}, {1000, 300}} {
		uid := uint64(c.n)
		per := memoryPerEntry(t, e, uid, c.n)
		i := c.n // the newest entry fill wrote
		v := e.rdb.HGet(ctxT(t), e.s.keys(uid)[1], member(ingest.Biz(1+i%6), uint64(1_000_000+i*7919))).Val()
		t.Logf("%d entries: %.1f bytes/entry (value %q, %d bytes)", c.n, per, v, len(v))
		if per > c.max {
			t.Errorf("%d entries take %.1f bytes each in Redis, over the %.0f the capacity plan counts on", c.n, per, c.max)
		}
		flags := "" // finished at 95 % of the duration
		if float64(i*61_000) >= 0.95*1_800_000 {
			flags = "f"
		}
		want := fmt.Sprintf("%d,%d,1800000,%s,%d,ios-7f3a", t0+int64(i)*1000, i*61_000, flags, t0+int64(i)*1000)
		if v != want {
			t.Errorf("stored value %q, want %q (ts,pos,dur,flags,posts,device)", v, want)
		}
	}
}

// BenchmarkMemoryPerEntry reports Redis bytes per history entry for
// timelines of several sizes. Small ones fit Redis's compact listpack
// encoding (zset/hash-max-listpack-entries, 128 by default); larger ones
// switch to a skiplist and a hash table, which cost several times more per
// entry. The loop only re-reads MEMORY USAGE: the figure does not depend on
// b.N.
func BenchmarkMemoryPerEntry(b *testing.B) {
	e := newEnv(b, false, 0)
	for _, n := range []int{20, 100, 1000} {
		b.Run(fmt.Sprintf("entries=%d", n), func(b *testing.B) {
			uid := uint64(n)
			per := memoryPerEntry(b, e, uid, n)
			k := e.s.keys(uid)
			for b.Loop() {
				if err := e.rdb.MemoryUsage(ctxT(b), k[0], 0).Err(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(per, "bytes/entry")
		})
	}
}

// BenchmarkHistoryDeepPage pages a user whose Redis timeline is capped at 50
// entries while ClickHouse's progress table holds all 500: "clickhouse"
// pages start past what Redis keeps (a cursor at depth 50..460), "redis" is
// the first page for comparison. Each op is one GET /v1/history page of 20;
// p50 and p99 are of the per-op latencies.
func BenchmarkHistoryDeepPage(b *testing.B) {
	const uid, total, redisMax, limit = 7, 500, 50, 20
	e := newEnv(b, true, redisMax)
	ups := make([]Update, 0, total)
	for i := 1; i <= total; i++ {
		ups = append(ups, Update{UserID: uid, Biz: ingest.Biz(1 + i%6), ItemID: uint64(1_000_000 + i*7919),
			PositionMs: uint64(i) * 1000, DurationMs: 1_800_000, TS: t0 + int64(i)*1000, Device: "ios-7f3a"})
	}
	e.apply(b, ups...)
	if n, err := e.rdb.ZCard(ctxT(b), e.s.keys(uid)[0]).Result(); err != nil || n != redisMax {
		b.Fatalf("Redis timeline holds %d entries (%v), want %d", n, err, redisMax)
	}
	// cursors after 50, 70, ... 460 items: every page is served from ClickHouse
	var deep []string
	cur := ""
	for depth := 0; depth+limit <= total-2*limit; {
		n := limit
		if depth == 0 {
			n = redisMax
		}
		p, err := e.s.History(ctxT(b), uid, 0, n, cur)
		if err != nil || len(p.Items) != n || p.NextCursor == "" {
			b.Fatalf("paging at depth %d: %d items, %v", depth, len(p.Items), err)
		}
		cur, depth = p.NextCursor, depth+n
		deep = append(deep, cur)
	}
	for _, tc := range []struct {
		name    string
		cursors []string
	}{{"from=redis", []string{""}}, {"from=clickhouse", deep}} {
		b.Run(tc.name, func(b *testing.B) {
			ctx := ctxT(b)
			var lat []time.Duration
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				start := time.Now()
				p, err := e.s.History(ctx, uid, 0, limit, tc.cursors[i%len(tc.cursors)])
				lat = append(lat, time.Since(start))
				if err != nil || len(p.Items) != limit {
					b.Fatalf("%d items, %v", len(p.Items), err)
				}
			}
			slices.Sort(lat)
			pct := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))].Microseconds()) / 1000 }
			b.ReportMetric(pct(0.50), "p50-ms")
			b.ReportMetric(pct(0.99), "p99-ms")
		})
	}
}

func BenchmarkHistoryPage(b *testing.B) {
	e := newEnv(b, false, 0)
	fill(b, e, 1, 1000)
	ctx := ctxT(b)
	for _, biz := range []ingest.Biz{0, ingest.BizAudio} {
		b.Run(fmt.Sprintf("biz=%d", biz), func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					p, err := e.s.History(ctx, 1, biz, 20, "")
					if err != nil || len(p.Items) != 20 {
						b.Fatalf("%d items, %v", len(p.Items), err)
					}
				}
			})
		})
	}
}

func BenchmarkApply(b *testing.B) {
	e := newEnv(b, false, 0)
	ctx := ctxT(b)
	ups := make([]Update, 1000)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		for j := range ups {
			ups[j] = Update{UserID: uint64(j % 200), Biz: ingest.BizAudio, ItemID: uint64(j + 1), PositionMs: uint64(i + 1), DurationMs: 1e6, TS: t0 + int64(i)}
		}
		if _, err := e.s.Apply(ctx, ups); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(ups))/b.Elapsed().Seconds(), "updates/s")
}
