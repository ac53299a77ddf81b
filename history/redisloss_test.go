package history

import (
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/onair/onair/ingest"
	"github.com/onair/onair/internal/testenv"
)

// lossEnv is a Store with ClickHouse on a private Redis the test may flush.
func lossEnv(t *testing.T) *env {
	t.Helper()
	srv := testenv.PrivateRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { rdb.Close() })
	ch, db := testenv.ClickHouse(t)
	s, err := New(Config{Redis: rdb, Prefix: "onair:", ClickHouse: ch, Database: db, Location: time.UTC})
	if err != nil {
		t.Fatal(err)
	}
	return &env{s: s, rdb: rdb, ch: ch, db: db}
}

// TestTouchNotFirstTwiceAfterLoss: once Redis lost the day markers,
// first_today stays false for the rest of that day (the user may have had
// it before the loss), also before the loss is handled (no epoch yet), and
// is true again the next day.
func TestTouchNotFirstTwiceAfterLoss(t *testing.T) {
	t.Parallel()
	e := lossEnv(t)
	ctx := ctxT(t)
	ep, err := e.s.Epoch(ctx)
	if err != nil || ep.LostAt != 0 { // a first start: nothing to lose
		t.Fatalf("first epoch: %+v, %v", ep, err)
	}
	now := time.Now().UTC()
	f := func(uid uint64, at time.Time, want bool) {
		t.Helper()
		first, _, err := e.s.Touch(ctx, uid, at)
		if err != nil || first != want {
			t.Fatalf("Touch(user %d, %v) = %v, %v; want %v", uid, at, first, err, want)
		}
	}
	f(1, now, true)
	f(1, now, false)
	e.apply(t, up(1, 1, 1000, now.UnixMilli())) // ClickHouse holds events now
	b, err := e.ch.PrepareBatch(ctx, "INSERT INTO "+e.db+".events (event_id, type, user_id)")
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Append("x", "progress", uint64(1)); err != nil {
		t.Fatal(err)
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
	if err := e.rdb.FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	f(1, now, false) // the loss is not handled yet: no epoch
	ep, err = e.s.Epoch(ctx)
	if err != nil || ep.LostAt == 0 {
		t.Fatalf("epoch after the loss: %+v, %v; want one that records the loss", ep, err)
	}
	f(1, now, false)
	f(2, now, false) // a user never seen before: cannot be told from a lost one
	f(1, now.Add(24*time.Hour), true)
	f(1, now.Add(24*time.Hour), false)
}

// TestWarmJoinsOlderPositionUnderNewerPlay: after a loss the aggregator
// writes a play (no position) of an item before the user is read again;
// the re-warm keeps ClickHouse's older resume point under it, and
// Apply marks the entry Cold, so its ClickHouse row is joined too.
func TestWarmJoinsOlderPositionUnderNewerPlay(t *testing.T) {
	t.Parallel()
	e := lossEnv(t)
	ctx := ctxT(t)
	e.apply(t, up(1, 1, 99_000, t0+100))
	if err := e.rdb.FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	play := Update{UserID: 1, Biz: ingest.BizAudio, ItemID: 1, TS: t0 + 200, Device: "ios", Play: true}
	ups := []Update{play}
	if ok, err := e.s.Apply(ctx, ups); err != nil || !ok[0] || !ups[0].Cold {
		t.Fatalf("Apply after the loss: %v, %v, Cold %v; want applied and Cold", ok, err, ups[0].Cold)
	}
	got, ok := e.progress(t, 1, ingest.BizAudio, 1)
	if !ok || got.PositionMs != 99_000 || got.UpdatedAt != t0+200 {
		t.Fatalf("after the re-warm: %+v %v; want position 99000 from ClickHouse, updated_at %d from the play", got, ok, t0+200)
	}
	// warm now: a new entry is not Cold
	ups = []Update{up(1, 2, 5, t0+300)}
	if _, err := e.s.Apply(ctx, ups); err != nil || ups[0].Cold {
		t.Fatalf("Apply to a warm user: %v, Cold %v", err, ups[0].Cold)
	}
}
