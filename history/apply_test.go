package history

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/onair/onair/ingest"
)

func TestApplyLastWriteWins(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false, 0)
	if got := e.apply(t, up(1, 10, 5000, t0+2000)); !got[0] {
		t.Fatal("first report not applied")
	}
	// older report: never moves progress back
	if got := e.apply(t, up(1, 10, 1000, t0+1000)); got[0] {
		t.Fatal("older report applied")
	}
	en, _ := e.progress(t, 1, ingest.BizAudio, 10)
	if en.PositionMs != 5000 || en.UpdatedAt != t0+2000 {
		t.Fatalf("got %+v", en)
	}
	// same ts: larger position wins; a smaller one does not move it
	e.apply(t, up(1, 10, 4000, t0+2000))
	if en, _ := e.progress(t, 1, ingest.BizAudio, 10); en.PositionMs != 5000 {
		t.Fatalf("tie with smaller position moved progress: %+v", en)
	}
	u := up(1, 10, 5000, t0+2000)
	u.Device = "web"
	if got := e.apply(t, u); !got[0] {
		t.Fatal("tie with larger device not applied")
	}
	// a retry of the same update reports applied again (idempotent)
	if got := e.apply(t, u); !got[0] {
		t.Fatal("retry of the stored winner not reported applied")
	}
	en, _ = e.progress(t, 1, ingest.BizAudio, 10)
	if en.Device != "web" {
		t.Fatalf("got %+v", en)
	}
	// newer wins whatever its position
	if got := e.apply(t, up(1, 10, 100, t0+3000)); !got[0] {
		t.Fatal("newer not applied")
	}
	en, _ = e.progress(t, 1, ingest.BizAudio, 10)
	if en.PositionMs != 100 || en.Device != "ios" {
		t.Fatalf("got %+v", en)
	}
}

func TestApplyManyUsersOneCall(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false, 0)
	var ups []Update
	for u := uint64(1); u <= 50; u++ {
		for i := uint64(1); i <= 3; i++ {
			ups = append(ups, up(u, i, 1000*i, t0+int64(i)))
		}
	}
	ups = append(ups, up(7, 1, 1, t0-5)) // older, loses to the one above
	got := e.apply(t, ups...)
	for i, a := range got {
		if a != (i != len(got)-1) {
			t.Fatalf("applied[%d] = %v", i, a)
		}
	}
	h := e.all(t, 7, 0, 20)
	if !slices.Equal(items(h), []uint64{3, 2, 1}) {
		t.Fatalf("history %v", items(h))
	}
}

func TestAccidentalZeroAndPlay(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false, 0)
	e.apply(t, up(1, 10, 90_000, t0))
	u := up(1, 10, 0, t0+1000)
	u.DurationMs = 0
	if got := e.apply(t, u); !got[0] {
		t.Fatal("zero report not applied")
	}
	en, _ := e.progress(t, 1, ingest.BizAudio, 10)
	if en.PositionMs != 90_000 || en.DurationMs != 600_000 || en.UpdatedAt != t0+1000 {
		t.Fatalf("accidental zero: got %+v", en)
	}
	// the effective values are handed back for ClickHouse
	ups := []Update{up(1, 10, 0, t0+1500)}
	if _, err := e.s.Apply(ctxT(t), ups); err != nil || ups[0].PositionMs != 90_000 {
		t.Fatalf("effective position not returned: %+v %v", ups[0], err)
	}
	// play: moves updated_at and timeline, keeps position
	e.apply(t, up(1, 11, 1000, t0+1600))
	p := Update{UserID: 1, Biz: ingest.BizAudio, ItemID: 10, TS: t0 + 2000, Play: true, Device: "tv"}
	e.apply(t, p)
	en, _ = e.progress(t, 1, ingest.BizAudio, 10)
	if en.PositionMs != 90_000 || en.UpdatedAt != t0+2000 || en.Device != "tv" {
		t.Fatalf("play: got %+v", en)
	}
	if h := items(e.all(t, 1, 0, 10)); !slices.Equal(h, []uint64{10, 11}) {
		t.Fatalf("play did not move the item up: %v", h)
	}
	// a genuine position after the zero is taken
	e.apply(t, up(1, 10, 3000, t0+3000))
	if en, _ = e.progress(t, 1, ingest.BizAudio, 10); en.PositionMs != 3000 {
		t.Fatalf("got %+v", en)
	}
}

func TestFinished(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false, 0)
	f := func(pos, dur uint64, want bool) {
		t.Helper()
		if got := e.s.Finished(pos, dur); got != want {
			t.Fatalf("Finished(%d, %d) = %v", pos, dur, got)
		}
		item := pos*1000 + dur + 1
		e.apply(t, Update{UserID: 1, Biz: ingest.BizVideo, ItemID: item, PositionMs: pos, DurationMs: dur, TS: t0})
		if en, _ := e.progress(t, 1, ingest.BizVideo, item); en.Finished != want {
			t.Fatalf("stored finished for %d/%d = %v", pos, dur, en.Finished)
		}
	}
	f(940_000, 1_000_000, false)
	f(950_000, 1_000_000, true)
	f(1_000_000, 2_000_000, false)
	f(1_990_000, 2_000_000, true) // within 10 s of the end
	f(5_000, 12_000, false)
	f(5_000, 0, false) // unknown duration
}

func TestDeleteThenLateOlderEvent(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false, 0)
	now := time.UnixMilli(t0 + 10_000)
	e.apply(t, up(1, 10, 5000, t0), up(1, 11, 5000, t0+1))
	if err := e.s.Delete(ctxT(t), 1, ingest.BizAudio, 10, now); err != nil {
		t.Fatal(err)
	}
	if _, ok := e.progress(t, 1, ingest.BizAudio, 10); ok {
		t.Fatal("deleted item still has progress")
	}
	// late event older than the delete: does not resurrect
	if got := e.apply(t, up(1, 10, 9000, t0+5000)); got[0] {
		t.Fatal("older event resurrected a deleted item")
	}
	// at the delete time exactly: the delete wins
	if got := e.apply(t, up(1, 10, 9000, now.UnixMilli())); got[0] {
		t.Fatal("event at the delete time resurrected it")
	}
	if h := items(e.all(t, 1, 0, 10)); !slices.Equal(h, []uint64{11}) {
		t.Fatalf("history %v", h)
	}
	// newer event brings it back
	if got := e.apply(t, up(1, 10, 100, now.UnixMilli()+1)); !got[0] {
		t.Fatal("newer event not applied")
	}
	if h := items(e.all(t, 1, 0, 10)); !slices.Equal(h, []uint64{10, 11}) {
		t.Fatalf("history %v", h)
	}
}

func TestDeleteCoversFutureDatedReport(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false, 0)
	e.apply(t, up(1, 10, 5000, t0+60_000)) // client clock a minute ahead
	if err := e.s.Delete(ctxT(t), 1, ingest.BizAudio, 10, time.UnixMilli(t0)); err != nil {
		t.Fatal(err)
	}
	if got := e.apply(t, up(1, 10, 5000, t0+60_000)); got[0] {
		t.Fatal("replay of the deleted report applied")
	}
}

func TestClearThenReplay(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false, 0)
	var ups []Update
	for i := uint64(1); i <= 6; i++ {
		u := up(1, i, 1000, t0+int64(i))
		u.Biz = ingest.Biz(i)
		ups = append(ups, u)
	}
	e.apply(t, ups...)
	now := time.UnixMilli(t0 + 10_000)
	if err := e.s.Clear(ctxT(t), 1, ingest.BizVideo, now); err != nil {
		t.Fatal(err)
	}
	if h := items(e.all(t, 1, 0, 10)); !slices.Equal(h, []uint64{6, 5, 4, 3, 1}) {
		t.Fatalf("after clearing video: %v", h)
	}
	// replay of everything: only video is blocked
	if got := e.apply(t, ups...); !slices.Equal(got, []bool{true, false, true, true, true, true}) {
		t.Fatalf("replay after clear(video): %v", got)
	}
	if err := e.s.Clear(ctxT(t), 1, 0, now); err != nil {
		t.Fatal(err)
	}
	if h := e.all(t, 1, 0, 10); len(h) != 0 {
		t.Fatalf("after clear all: %v", items(h))
	}
	if got := e.apply(t, ups...); slices.Contains(got, true) {
		t.Fatalf("replay after clear(all): %v", got)
	}
	newer := ups[3]
	newer.TS = now.UnixMilli() + 1
	if got := e.apply(t, newer); !got[0] {
		t.Fatal("newer event after clear not applied")
	}
	if h := items(e.all(t, 1, 0, 10)); !slices.Equal(h, []uint64{4}) {
		t.Fatalf("after newer event: %v", h)
	}
}

func TestTombstonesPruned(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false, 0)
	old := time.UnixMilli(t0)
	for i := uint64(1); i <= 5; i++ {
		if err := e.s.Delete(ctxT(t), 1, ingest.BizAudio, i, old); err != nil {
			t.Fatal(err)
		}
	}
	later := old.Add(TombstoneTTL + time.Hour)
	if err := e.s.Delete(ctxT(t), 1, ingest.BizAudio, 99, later); err != nil {
		t.Fatal(err)
	}
	n, err := e.rdb.ZCard(ctxT(t), e.s.keys(1)[3]).Result()
	if err != nil || n != 1 {
		t.Fatalf("tombstones after TTL: %d %v", n, err)
	}
}

func TestPauseThenResume(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false, 0)
	ctx := ctxT(t)
	e.apply(t, up(1, 1, 1000, t0), up(1, 2, 1000, t0+1))
	if err := e.s.SetPaused(ctx, 1, true, time.UnixMilli(t0+100)); err != nil {
		t.Fatal(err)
	}
	if p, err := e.s.Paused(ctx, 1); err != nil || !p {
		t.Fatalf("Paused = %v %v", p, err)
	}
	if _, paused, err := e.s.Touch(ctx, 1, time.UnixMilli(t0)); err != nil || !paused {
		t.Fatalf("Touch paused = %v %v", paused, err)
	}
	// while paused: new item and a replay of item 1 keep positions, timeline unchanged
	e.apply(t, up(1, 3, 7000, t0+200), up(1, 1, 8000, t0+300))
	if h := items(e.all(t, 1, 0, 10)); !slices.Equal(h, []uint64{2, 1}) {
		t.Fatalf("timeline changed while paused: %v", h)
	}
	if en, ok := e.progress(t, 1, ingest.BizAudio, 3); !ok || en.PositionMs != 7000 {
		t.Fatalf("resume point not kept while paused: %+v", en)
	}
	if en, _ := e.progress(t, 1, ingest.BizAudio, 1); en.PositionMs != 8000 {
		t.Fatalf("resume point not kept while paused: %+v", en)
	}
	if err := e.s.SetPaused(ctx, 1, false, time.UnixMilli(t0+400)); err != nil {
		t.Fatal(err)
	}
	e.apply(t, up(1, 3, 9000, t0+500))
	if h := items(e.all(t, 1, 0, 10)); !slices.Equal(h, []uint64{3, 2, 1}) {
		t.Fatalf("after resume: %v", h)
	}
}

func TestHideUntilProgressChanges(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false, 0)
	ctx := ctxT(t)
	e.apply(t, up(1, 1, 1000, t0), up(1, 2, 2000, t0+1), up(1, 3, 599_000, t0+2), up(1, 4, 0, t0+3))
	cont := func() []uint64 {
		t.Helper()
		c, err := e.s.Continue(ctx, 1, 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		return items(c)
	}
	if c := cont(); !slices.Equal(c, []uint64{2, 1}) { // 3 finished, 4 has no resume point
		t.Fatalf("continue %v", c)
	}
	if err := e.s.Hide(ctx, 1, ingest.BizAudio, 2, time.UnixMilli(t0+10)); err != nil {
		t.Fatal(err)
	}
	if c := cont(); !slices.Equal(c, []uint64{1}) {
		t.Fatalf("continue after hide %v", c)
	}
	// a play (same position) keeps it hidden; a new position shows it again
	e.apply(t, Update{UserID: 1, Biz: ingest.BizAudio, ItemID: 2, TS: t0 + 20, Play: true})
	if c := cont(); !slices.Equal(c, []uint64{1}) {
		t.Fatalf("continue after play %v", c)
	}
	e.apply(t, up(1, 2, 2500, t0+30))
	if c := cont(); !slices.Equal(c, []uint64{2, 1}) {
		t.Fatalf("continue after progress %v", c)
	}
	if err := e.s.Hide(ctx, 1, ingest.BizAudio, 777, time.UnixMilli(t0)); err != nil {
		t.Fatalf("hide of unknown item: %v", err)
	}
}

func TestTimelineCapped(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false, 5)
	for i := uint64(1); i <= 8; i++ {
		e.apply(t, up(1, i, 1000, t0+int64(i)))
	}
	if h := items(e.all(t, 1, 0, 3)); !slices.Equal(h, []uint64{8, 7, 6, 5, 4}) {
		t.Fatalf("capped timeline %v", h)
	}
	k := e.s.keys(1)
	if n := e.rdb.HLen(ctxT(t), k[1]).Val(); n != 5 {
		t.Fatalf("progress hash holds %d entries, want 5", n)
	}
}

func TestTouchFirstToday(t *testing.T) {
	t.Parallel()
	rdb, prefix := newEnv(t, false, 0).rdb, fmt.Sprint("touch", time.Now().UnixNano(), ":")
	s, err := New(Config{Redis: rdb, Prefix: prefix, Location: time.UTC})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Del(ctxT(t), s.keys(1)[4]) })
	day := time.Date(2025, 11, 22, 23, 0, 0, 0, time.UTC)
	f := func(now time.Time, want bool) {
		t.Helper()
		first, paused, err := s.Touch(ctxT(t), 1, now)
		if err != nil || first != want || paused {
			t.Fatalf("Touch(%v) = %v %v %v", now, first, paused, err)
		}
	}
	f(day, true)
	f(day.Add(30*time.Minute), false)
	f(day.Add(time.Hour), true) // next day
	f(day.Add(2*time.Hour), false)
}

// TestPauseFlagMatchesTouch: PauseFlag reads the same flag Touch reports,
// without touching the day.
func TestPauseFlagMatchesTouch(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false, 0)
	now := time.Now()
	for _, paused := range []bool{true, false} {
		if err := e.s.SetPaused(ctxT(t), 3, paused, now); err != nil {
			t.Fatal(err)
		}
		got, err := e.s.PauseFlag(ctxT(t), 3)
		if err != nil || got != paused {
			t.Fatalf("PauseFlag after SetPaused(%v) = %v, %v", paused, got, err)
		}
		if _, tp, err := e.s.Touch(ctxT(t), 3, now); err != nil || tp != got {
			t.Fatalf("Touch reports paused %v, PauseFlag %v (%v)", tp, got, err)
		}
	}
}
