package rooms

import (
	"context"
	"strconv"
	"testing"

	"github.com/onair/onair/aggregate"
	"github.com/onair/onair/ingest"
)

// BenchmarkApplyGifts measures what counting costs: batches of 1 000 gifts
// over 10 rooms, as one write-back hands them over, through the fenced
// scripts (fenced) and, as the same-run baseline, through bare pipelined
// ZINCRBYs of the same gifts (zincrby: no fence, no retry check, not exact
// under replays).
//
//	go test ./rooms -run '^$' -bench ApplyGifts -benchtime 200x -count 5
func BenchmarkApplyGifts(b *testing.B) {
	w := newWorld(b, 1, nil)
	ctx := context.Background()
	const batch, rooms = 1000, 10
	mk := func(i int) []aggregate.Gift {
		gs := make([]aggregate.Gift, batch)
		for j := range gs {
			off := int64(i*batch + j)
			gs[j] = gift(int32(j%2), off, uint64(1+j%rooms), uint64(1+j%97), 10, "")
		}
		return gs
	}
	b.Run("fenced", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if err := w.b.ApplyGifts(ctx, mk(i)); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "gifts/s")
	})
	b.Run("zincrby", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			pipe := w.rdb.Pipeline()
			for _, g := range mk(i) {
				pipe.ZIncrBy(ctx, w.b.roomKey(g.Event.RoomID+100, kindLB), float64(g.Event.Value), strconv.FormatUint(g.Event.UserID, 10))
			}
			if _, err := pipe.Exec(ctx); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "gifts/s")
	})
}

// BenchmarkDanmaku measures one danmaku's accept path (room check, rate,
// blocked words, produce to events, publish the frame, recent list) against
// the same-run baseline of producing one event alone (produce).
//
//	go test ./rooms -run '^$' -bench Danmaku -benchtime 2000x -count 5
func BenchmarkDanmaku(b *testing.B) {
	w := newWorld(b, 4, func(c *Config) { c.DanmakuRate = -1 })
	ctx := context.Background()
	w.open(5, 8)
	b.Run("danmaku", func(b *testing.B) {
		for b.Loop() {
			if _, err := w.b.Danmaku(ctx, 5, Caller{UserID: 42}, "hello", ""); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("produce", func(b *testing.B) {
		for b.Loop() {
			ev := []ingest.Event{{Type: ingest.TypeDanmaku, UserID: 42, RoomID: 5, Text: "hello", TS: 1}}
			if err := w.prod.Produce(ctx, ev); err != nil {
				b.Fatal(err)
			}
		}
	})
}
