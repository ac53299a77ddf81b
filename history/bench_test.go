package history

import (
	"fmt"
	"testing"

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

// TestMemoryPerEntry reports what one history entry costs in Redis (the
// timeline ZSET and the progress HASH together), from MEMORY USAGE.
func TestMemoryPerEntry(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false, 0)
	for _, n := range []int{100, 1000} {
		uid := uint64(n)
		fill(t, e, uid, n)
		k := e.s.keys(uid)
		var total int64
		for _, key := range []string{k[0], k[1]} {
			b, err := e.rdb.MemoryUsage(ctxT(t), key, 0).Result()
			if err != nil {
				t.Fatal(err)
			}
			total += b
		}
		v := e.rdb.HGet(ctxT(t), k[1], member(ingest.Biz(1+n%6), uint64(1_000_000+n*7919))).Val()
		t.Logf("%d entries: %d bytes, %.1f bytes/entry (value %q, %d bytes)", n, total, float64(total)/float64(n), v, len(v))
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
