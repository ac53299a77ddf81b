package history

import (
	"fmt"
	"slices"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/onair/onair/ingest"
)

// reader is a second Store on e's keys, as another API node would be: it
// sees the writer's changes only through Redis.
func (e *env) reader(t *testing.T) *Store {
	t.Helper()
	cfg := Config{Redis: e.rdb, Prefix: e.s.prefix, ClickHouse: e.ch, Database: e.db}
	if e.ch == nil {
		cfg.ClickHouse = nil
	}
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// page reads the first page of user 1 through s and checks its items.
func page(t *testing.T, s *Store, want ...uint64) {
	t.Helper()
	p, err := s.History(ctxT(t), 1, 0, 20, "")
	if err != nil {
		t.Fatal(err)
	}
	if got := items(p.Items); !slices.Equal(got, want) {
		t.Fatalf("page %v, want %v", got, want)
	}
}

func hits(s *Store) float64 {
	var m dto.Metric
	if err := s.pages.hits.Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}

// TestPageCacheSeesEveryChange: a cached page is served again only while
// the user is unchanged; every kind of change made through another Store
// (a write, a delete, a hide, a clear, lost keys) shows on the next read.
func TestPageCacheSeesEveryChange(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true, 0)
	r := e.reader(t)
	e.apply(t, up(1, 1, 1000, t0+1), up(1, 2, 1000, t0+2), up(1, 3, 1000, t0+3))
	page(t, r, 3, 2, 1)
	page(t, r, 3, 2, 1)
	if hits(r) != 1 {
		t.Fatalf("unchanged user: %v cache hits, want 1", hits(r))
	}

	steps := []struct {
		name   string
		change func()
		want   []uint64
	}{
		{"newer report", func() { e.apply(t, up(1, 1, 2000, t0+10)) }, []uint64{1, 3, 2}},
		{"new item", func() { e.apply(t, up(1, 4, 1000, t0+11)) }, []uint64{4, 1, 3, 2}},
		{"delete", func() {
			if err := e.s.Delete(ctxT(t), 1, ingest.BizAudio, 3, time.Now()); err != nil {
				t.Fatal(err)
			}
		}, []uint64{4, 1, 2}},
		{"keys lost", func() {
			k := e.s.keys(1)
			if err := e.rdb.Del(ctxT(t), k[0], k[1], k[2], k[4]).Err(); err != nil {
				t.Fatal(err)
			}
		}, []uint64{4, 1, 2}}, // re-warmed from ClickHouse, tombstone kept
		{"clear", func() {
			if err := e.s.Clear(ctxT(t), 1, 0, time.Now()); err != nil {
				t.Fatal(err)
			}
		}, nil},
	}
	for _, st := range steps {
		before := hits(r)
		st.change()
		page(t, r, st.want...)
		if hits(r) != before {
			t.Fatalf("%s: the read after the change was a cache hit", st.name)
		}
		page(t, r, st.want...)
		if hits(r) != before+1 {
			t.Fatalf("%s: the second read of an unchanged user missed the cache", st.name)
		}
	}
}

// TestPageCacheVersionsDoNotRepeatAfterLoss: without ClickHouse nothing
// re-warms lost keys, and the aggregator starts them afresh; the new
// version counter starts at the clock, so it cannot meet the cached one.
func TestPageCacheVersionsDoNotRepeatAfterLoss(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false, 0)
	r := e.reader(t)
	e.apply(t, up(1, 1, 1000, t0+1))
	page(t, r, 1)
	k := e.s.keys(1)
	v1, err := e.rdb.HGet(ctxT(t), k[4], "v").Result()
	if err != nil {
		t.Fatal(err)
	}
	if err := e.rdb.Del(ctxT(t), k[0], k[1], k[4]).Err(); err != nil {
		t.Fatal(err)
	}
	e.apply(t, up(1, 2, 1000, t0+2))
	v2, err := e.rdb.HGet(ctxT(t), k[4], "v").Result()
	if err != nil {
		t.Fatal(err)
	}
	if v1 == v2 {
		t.Fatalf("version %s repeated after the keys were lost", v1)
	}
	page(t, r, 2)
}

// TestPageCacheOff: a negative PageCache reads Redis every time.
func TestPageCacheOff(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false, 0)
	s, err := New(Config{Redis: e.rdb, Prefix: e.s.prefix, PageCache: -1})
	if err != nil {
		t.Fatal(err)
	}
	if s.pages != nil {
		t.Fatal("PageCache -1 still built a cache")
	}
	e.apply(t, up(1, 1, 1000, t0+1))
	page(t, s, 1)
	e.apply(t, up(1, 2, 1000, t0+2))
	page(t, s, 2, 1)
}

// TestCachedPageRendersOnce: a page served from the cache is rendered once
// for all its readers; a page read afresh is rendered afresh.
func TestCachedPageRendersOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false, 0)
	e.apply(t, up(1, 1, 1000, t0+1))
	calls := 0
	render := func(p Page) []byte { calls++; return []byte(fmt.Sprint(items(p.Items))) }
	for i := 0; i < 3; i++ {
		p, err := e.s.History(ctxT(t), 1, 0, 20, "")
		if err != nil {
			t.Fatal(err)
		}
		if got := string(p.Render(render)); got != "[1]" {
			t.Fatalf("rendered %q", got)
		}
	}
	if calls != 1 {
		t.Fatalf("3 reads of an unchanged page rendered it %d times, want 1", calls)
	}
	e.apply(t, up(1, 2, 1000, t0+2))
	p, err := e.s.History(ctxT(t), 1, 0, 20, "")
	if err != nil {
		t.Fatal(err)
	}
	if got := string(p.Render(render)); got != "[2 1]" || calls != 2 {
		t.Fatalf("after a change: rendered %q (%d renders)", got, calls)
	}
}
