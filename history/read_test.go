package history

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/onair/onair/ingest"
	"github.com/onair/onair/internal/refusal"
)

func TestPagingStableWhileNewPlaysArrive(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false, 0)
	var want []uint64
	for i := uint64(1); i <= 50; i++ {
		ts := t0 + int64(i/3) // equal scores too: ties ordered by member
		e.apply(t, up(1, i, 1000, ts))
	}
	first, err := e.s.History(ctxT(t), 1, 0, 0, "")
	if err != nil || len(first.Items) != DefaultLimit {
		t.Fatalf("default limit page: %d items, %v", len(first.Items), err)
	}
	p, err := e.s.History(ctxT(t), 1, 0, 100, "")
	if err != nil {
		t.Fatal(err)
	}
	want = items(p.Items)
	var got []uint64
	cur := ""
	next := uint64(1000)
	for {
		p, err := e.s.History(ctxT(t), 1, 0, 7, cur)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, items(p.Items)...)
		// new plays arrive between pages: they go to the top
		next++
		e.apply(t, up(1, next, 1000, t0+1000+int64(next)))
		if p.NextCursor == "" {
			break
		}
		cur = p.NextCursor
	}
	if !slices.Equal(got, want) {
		t.Fatalf("paged\n%v\nwant\n%v", got, want)
	}
}

func TestHistoryBizFilter(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false, 0)
	for i := uint64(1); i <= 40; i++ {
		u := up(1, i, 1000, t0+int64(i))
		if i%10 == 0 {
			u.Biz = ingest.BizComic
		}
		e.apply(t, u)
	}
	if h := items(e.all(t, 1, ingest.BizComic, 1)); !slices.Equal(h, []uint64{40, 30, 20, 10}) {
		t.Fatalf("comic history %v", h)
	}
	if h := e.all(t, 1, ingest.BizAudio, 100); len(h) != 36 {
		t.Fatalf("audio history has %d items", len(h))
	}
	if h := e.all(t, 1, ingest.BizRadio, 5); len(h) != 0 {
		t.Fatalf("radio history %v", items(h))
	}
}

func TestHistoryBadInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false, 0)
	ctx := ctxT(t)
	f := func(biz ingest.Biz, limit int, cur string, want error) {
		t.Helper()
		_, err := e.s.History(ctx, 1, biz, limit, cur)
		if !errors.Is(err, want) {
			t.Fatalf("History(%d, %d, %q) = %v, want %v", biz, limit, cur, err, want)
		}
		if _, ok := refusal.As(err); want != nil && !ok {
			t.Fatalf("not a *refusal.Error: %v", err)
		}
	}
	f(0, 20, "", nil)
	f(0, 100, "", nil)
	f(0, 101, "", ErrBadLimit)
	f(0, -1, "", ErrBadLimit)
	f(7, 20, "", ErrBadBiz)
	f(0, 20, "!!", ErrBadCursor)
	f(0, 20, "eA", ErrBadCursor)                                     // "x"
	f(0, 20, cursor{score: 5, member: "9:1"}.encode(), ErrBadCursor) // unknown biz
	f(0, 20, cursor{score: 5, member: "1:1"}.encode(), nil)
	if _, err := ParseItemKey("audio:x"); err == nil {
		t.Fatal("ParseItemKey accepted audio:x")
	}
	if k, err := ParseItemKey("video:9"); err != nil || k.String() != "video:9" {
		t.Fatalf("ParseItemKey = %v %v", k, err)
	}
}

func FuzzDecodeCursor(f *testing.F) {
	f.Add(cursor{score: t0, member: "1:123"}.encode())
	f.Add("")
	f.Add("MTox")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := decodeCursor(s)
		if err != nil {
			return
		}
		if s != "" && c.encode() != s {
			// several encodings may decode alike; the canonical one must round-trip
			if c2, err := decodeCursor(c.encode()); err != nil || c2 != c {
				t.Fatalf("%q -> %+v does not round-trip", s, c)
			}
		}
	})
}

func TestProgressMany(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false, 0)
	e.apply(t, up(1, 1, 1000, t0), Update{UserID: 1, Biz: ingest.BizVideo, ItemID: 9, PositionMs: 5000, DurationMs: 60_000, TS: t0, Device: "a,b"})
	keys := []ItemKey{{ingest.BizAudio, 1}, {ingest.BizVideo, 9}, {ingest.BizAudio, 2}}
	m, err := e.s.Progress(ctxT(t), 1, keys)
	if err != nil {
		t.Fatal(err)
	}
	if len(m) != 2 || m[keys[0]].PositionMs != 1000 || m[keys[1]].Device != "a,b" || m[keys[1]].DurationMs != 60_000 {
		t.Fatalf("progress %+v", m)
	}
	if _, ok := m[keys[2]]; ok {
		t.Fatal("absent key present")
	}
}

func TestValueRoundTrip(t *testing.T) {
	f := func(e Entry, hidden bool) {
		t.Helper()
		got, h, ok := decodeValue(e.Key(), encodeValue(e, hidden, e.UpdatedAt-1))
		if !ok || got != e || h != hidden {
			t.Fatalf("%+v/%v -> %+v/%v/%v", e, hidden, got, h, ok)
		}
	}
	f(Entry{Biz: 1, ItemID: 2, PositionMs: 3, DurationMs: 4, UpdatedAt: t0, Device: "ios-7f3a"}, false)
	f(Entry{Biz: 6, ItemID: 1 << 60, Finished: true, UpdatedAt: 1, Device: ",,x,"}, true)
	f(Entry{Biz: 2, ItemID: 1, UpdatedAt: time.Now().UnixMilli()}, false)
}
