package rooms

import (
	"fmt"
	"testing"
	"time"

	"github.com/onair/onair/aggregate"
)

// TestGiftClaimsBounded fills one room with 100 000 distinct client gift
// ids over more than two dedupe windows: the claims never outlive two
// windows (every claims key has an expiry of at most two windows, never
// pushed back), the room holds at most the claims of the last two windows,
// a retry within a window is still not counted, and once claims stop the
// keys expire. Break tried: today's gifts.lua (EXPIRE pushed back by every
// claim) held all 100 000 claims in one key that never expired while
// gifts kept coming.
func TestGiftClaimsBounded(t *testing.T) {
	t.Parallel()
	const window = time.Second
	w := newWorld(t, 1, func(c *Config) { c.DedupeWindow = window })
	ctx := ctxT(t)
	w.open(7, 8)
	gd, old := w.b.roomKey(7, kindGiftID), w.b.roomKey(7, kindGiftIDOld)
	const total, batch = 100_000, 500
	start := time.Now()
	off := int64(0)
	type mark struct {
		at  time.Time
		off int64
	}
	var marks []mark // claims made before each batch
	for off < total || time.Since(start) < 3*window {
		marks = append(marks, mark{time.Now(), off})
		gs := make([]aggregate.Gift, 0, batch)
		for range batch {
			gs = append(gs, gift(0, off, 7, uint64(1+off%50), 1, fmt.Sprintf("c%d", off)))
			off++
		}
		if err := w.b.ApplyGifts(ctx, gs); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{gd, old} {
			ttl, err := w.rdb.PTTL(ctx, k).Result()
			if err != nil {
				t.Fatal(err)
			}
			if ttl == -1 || ttl > 2*window {
				t.Fatalf("after %d claims %s has expiry %s, want at most %s", off, k, ttl, 2*window)
			}
		}
	}
	// A retry (same user and client id, a later record) of the last gift is
	// still a retry.
	last := off - 1
	before := w.board(7)
	if err := w.b.ApplyGifts(ctx, []aggregate.Gift{gift(0, off, 7, uint64(1+last%50), 1, fmt.Sprintf("c%d", last))}); err != nil {
		t.Fatal(err)
	}
	if after := w.board(7); after[uint64(1+last%50)] != before[uint64(1+last%50)] {
		t.Fatal("a retry within the window was counted")
	}
	n1, _ := w.rdb.HLen(ctx, gd).Result()
	n2, _ := w.rdb.HLen(ctx, old).Result()
	elapsed := time.Since(start)
	t.Logf("%d claims in %s; the room holds %d + %d of them", off, elapsed.Round(time.Millisecond), n1, n2)
	// A generation takes claims for one window and lives two: what the
	// room holds was claimed within the last two windows (a little slack
	// for the time a batch takes), whatever the rate was.
	recent := off + 1
	for _, m := range marks {
		if time.Since(m.at) <= 2*window+250*time.Millisecond {
			recent = off + 1 - m.off
			break
		}
	}
	if n1+n2 > recent+batch {
		t.Fatalf("the room holds %d claims, want at most those of the last two windows (%d)", n1+n2, recent)
	}
	deadline := time.Now().Add(2*window + 3*time.Second)
	for {
		n, err := w.rdb.Exists(ctx, gd, old).Result()
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("claims keys still there %s after the last claim, want gone within two windows", 2*window+3*time.Second)
		}
		time.Sleep(100 * time.Millisecond) // polling Redis's expiry
	}
}
