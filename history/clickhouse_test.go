package history

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/onair/onair/ingest"
	"github.com/onair/onair/internal/testenv"
)

func TestDeepPagesFromClickHouse(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true, 5)
	ctx := ctxT(t)
	var want, wantComic []uint64
	for i := uint64(1); i <= 23; i++ {
		u := up(1, i, 1000*i, t0+int64(i/2)) // pairs share a ts
		if i%4 == 0 {
			u.Biz = ingest.BizComic
		}
		e.apply(t, u)
	}
	// item 3 lives only in ClickHouse now; delete it there
	if err := e.s.Delete(ctx, 1, ingest.BizAudio, 3, time.UnixMilli(t0+100)); err != nil {
		t.Fatal(err)
	}
	for i := uint64(23); i >= 1; i-- {
		if i != 3 {
			want = append(want, i)
		}
	}
	// within one ts the larger member comes first: "1:11" > "1:10"
	slices.SortStableFunc(want, func(a, b uint64) int {
		if a/2 != b/2 {
			return int(b/2) - int(a/2)
		}
		ma, mb := memberOf(a), memberOf(b)
		if ma > mb {
			return -1
		}
		return 1
	})
	for _, i := range want {
		if i%4 == 0 {
			wantComic = append(wantComic, i)
		}
	}
	for _, limit := range []int{1, 4, 5, 6, 100} {
		if h := items(e.all(t, 1, 0, limit)); !slices.Equal(h, want) {
			t.Fatalf("limit %d: paged\n%v\nwant\n%v", limit, h, want)
		}
	}
	if h := items(e.all(t, 1, ingest.BizComic, 2)); !slices.Equal(h, wantComic) {
		t.Fatalf("comic: %v want %v", h, wantComic)
	}
	// a deep item's progress comes from ClickHouse too
	if en, ok := e.progress(t, 1, ingest.BizAudio, 2); !ok || en.PositionMs != 2000 {
		t.Fatalf("deep progress %+v %v", en, ok)
	}
	if _, ok := e.progress(t, 1, ingest.BizAudio, 3); ok {
		t.Fatal("deleted deep item has progress")
	}
	// clear of comic, recorded in ClickHouse, hides deep comic rows too
	if err := e.s.Clear(ctx, 1, ingest.BizComic, time.UnixMilli(t0+200)); err != nil {
		t.Fatal(err)
	}
	if h := e.all(t, 1, ingest.BizComic, 3); len(h) != 0 {
		t.Fatalf("comic after clear: %v", items(h))
	}
	if h := e.all(t, 1, 0, 3); len(h) != len(want)-len(wantComic) {
		t.Fatalf("after clear: %d items", len(h))
	}
}

func memberOf(i uint64) string {
	b := ingest.BizAudio
	if i%4 == 0 {
		b = ingest.BizComic
	}
	return member(b, i)
}

func TestFlushAllRewarmsFromClickHouse(t *testing.T) {
	t.Parallel()
	srv := testenv.PrivateRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { rdb.Close() })
	ch, db := testenv.ClickHouse(t)
	s, err := New(Config{Redis: rdb, Prefix: "onair:", ClickHouse: ch, Database: db, MaxEntries: 20})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{s: s, rdb: rdb, ch: ch, db: db}
	ctx := ctxT(t)
	for i := uint64(1); i <= 30; i++ {
		e.apply(t, up(1, i, 1000*i, t0+int64(i)))
	}
	if err := s.Delete(ctx, 1, ingest.BizAudio, 30, time.UnixMilli(t0+1000)); err != nil {
		t.Fatal(err)
	}
	if err := s.Hide(ctx, 1, ingest.BizAudio, 29, time.UnixMilli(t0+1000)); err != nil {
		t.Fatal(err)
	}
	if err := s.SetPaused(ctx, 1, true, time.UnixMilli(t0+2000)); err != nil {
		t.Fatal(err)
	}
	e.apply(t, up(1, 40, 4000, t0+3000)) // while paused: progress only
	before := e.all(t, 1, 0, 7)
	if len(before) != 29 {
		t.Fatalf("before flush: %d items", len(before))
	}

	if err := rdb.FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	// a replay of the deleted item reaches the aggregator before anyone reads
	e.apply(t, up(1, 30, 1, t0+30))
	warms := s.warms.Load()
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.History(ctx, 1, 0, 20, ""); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := s.warms.Load() - warms; n != 1 {
		t.Fatalf("%d warms for 16 concurrent readers, want 1", n)
	}
	after := e.all(t, 1, 0, 7)
	if !slices.Equal(items(after), items(before)) {
		t.Fatalf("after flush\n%v\nbefore\n%v", items(after), items(before))
	}
	for i := range after {
		if after[i] != before[i] {
			t.Fatalf("entry %d: %+v, before %+v", i, after[i], before[i])
		}
	}
	if p, err := s.Paused(ctx, 1); err != nil || !p {
		t.Fatalf("paused after re-warm = %v %v", p, err)
	}
	if en, ok := e.progress(t, 1, ingest.BizAudio, 40); !ok || en.PositionMs != 4000 {
		t.Fatalf("paused-time progress after re-warm: %+v %v", en, ok)
	}
	c, err := s.Continue(ctx, 1, 0, 5)
	if err != nil || slices.Contains(items(c), 29) || len(c) != 5 {
		t.Fatalf("continue after re-warm: %v %v", items(c), err)
	}
	// tombstones are back in Redis: an old event cannot resurrect item 30
	if got := e.apply(t, up(1, 30, 1, t0+31)); got[0] {
		t.Fatal("deleted item resurrected after re-warm")
	}
	if n := s.warms.Load() - warms; n != 1 {
		t.Fatalf("%d warms, want 1", n)
	}
}

func TestEmptyUserWarmsOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true, 0)
	for range 3 {
		p, err := e.s.History(ctxT(t), 42, 0, 10, "")
		if err != nil || len(p.Items) != 0 || p.NextCursor != "" {
			t.Fatalf("%+v %v", p, err)
		}
	}
	if n := e.s.warms.Load(); n != 1 {
		t.Fatalf("%d warms, want 1", n)
	}
}
