package wallet

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/onair/onair/internal/pgdb"
	"github.com/onair/onair/internal/testenv"
)

// BenchmarkHotAnchor: many senders gift one anchor at once (32 in flight),
// with the income and platform in one account (shards=1: every gift
// queues on the same two rows) and split over 16 and 64 sub-accounts (the
// remedy). Real PostgreSQL: testenv's shared server (fsync off), or, with
// ONAIR_BENCH_POSTGRES_DSN, a migrated database such as onair dev's
// (fsync on: a row lock is then held through the commit's WAL flush).
//
//	go test -run X -bench HotAnchor -benchtime 4000x ./wallet/
//	ONAIR_BENCH_POSTGRES_DSN=postgres://onair@127.0.0.1:15432/onair go test -run X -bench HotAnchor -benchtime 4000x ./wallet/
func BenchmarkHotAnchor(b *testing.B) {
	for _, shards := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("shards=%d", shards), func(b *testing.B) {
			ctx := context.Background()
			w := newWalletB(b, Config{Shards: shards})
			const senders = 256
			for u := uint64(1); u <= senders; u++ {
				if _, err := w.Recharge(ctx, Order{UserID: u, OrderID: "o", Coins: MaxRecharge}); err != nil {
					b.Fatal(err)
				}
			}
			var n, failed atomic.Uint64
			run := time.Now().UnixNano() // event ids and the anchor unique to the run, for a shared database
			anchor := uint64(1_000_000 + shards)
			b.SetParallelism(16) // 16 × GOMAXPROCS (2 here) = 32 gifts in flight
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := n.Add(1)
					u := i%senders + 1
					if _, err := w.PayGift(ctx, GiftInput{Sender: u, Room: 1, Anchor: anchor, GiftID: 1, Count: 1, EventID: fmt.Sprint(run, "-", i)}); err != nil {
						failed.Add(1) // a 2 s timeout queueing on the hot row: a 503
					}
				}
			})
			b.ReportMetric(float64(uint64(b.N)-failed.Load())/b.Elapsed().Seconds(), "paid/s")
			b.ReportMetric(float64(failed.Load()), "timeouts")
		})
	}
}

// newWalletB is a wallet on a database of its own with onair's pool size
// (32 connections; pgtest's pool has 8).
func newWalletB(b *testing.B, cfg Config) *Wallet {
	ctx := context.Background()
	dsn := os.Getenv("ONAIR_BENCH_POSTGRES_DSN")
	if dsn == "" {
		dsn = testenv.PostgresDSN(b)
	}
	db, err := pgdb.Open(ctx, pgdb.Config{DSN: dsn})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(db.Close)
	if _, err := pgdb.Migrate(ctx, db, nil); err != nil {
		b.Fatal(err)
	}
	cfg.DB = db
	w, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	return w
}
