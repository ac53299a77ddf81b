package redisbatch

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/onair/onair/internal/testenv"
)

// BenchmarkConcurrentGet: 64 goroutines per core issue single GETs, each
// with a deadline as request paths do, through the batching client: the
// cost per command of coalescing (and of the copies a batch runs).
func BenchmarkConcurrentGet(b *testing.B) {
	_, prefix := testenv.Redis(b)
	rdb, closeAll := Wrap(&redis.UniversalOptions{Addrs: []string{testenv.RedisAddr(b)}, ContextTimeoutEnabled: true}, Config{})
	defer closeAll()
	ctx := context.Background()
	if err := rdb.Set(ctx, prefix+"k", "v", 0).Err(); err != nil {
		b.Fatal(err)
	}
	b.SetParallelism(64)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			c, cancel := context.WithTimeout(ctx, time.Second)
			err := rdb.Get(c, prefix+"k").Err()
			cancel()
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
}
