package history

import (
	"context"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/redis/go-redis/v9"

	"github.com/onair/onair/ingest"
	"github.com/onair/onair/internal/testenv"
)

type env struct {
	s   *Store
	rdb redis.UniversalClient
	ch  driver.Conn
	db  string
}

// newEnv returns a Store on the shared Redis (own prefix) and, with ch, a
// fresh ClickHouse database.
func newEnv(t testing.TB, withCH bool, maxEntries int) *env {
	t.Helper()
	rdb, prefix := testenv.Redis(t)
	e := &env{rdb: rdb}
	cfg := Config{Redis: rdb, Prefix: prefix, MaxEntries: maxEntries}
	if withCH {
		e.ch, e.db = testenv.ClickHouse(t)
		cfg.ClickHouse, cfg.Database = e.ch, e.db
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.s = s
	return e
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// apply applies ups and, like the aggregator, writes the applied ones to
// ClickHouse's progress table when there is one.
func (e *env) apply(t testing.TB, ups ...Update) []bool {
	t.Helper()
	ok, err := e.s.Apply(ctxT(t), ups)
	if err != nil {
		t.Fatal(err)
	}
	if e.ch != nil {
		var rows []Update
		for i, a := range ok {
			if a {
				rows = append(rows, ups[i])
			}
		}
		e.insertProgress(t, rows...)
	}
	return ok
}

func (e *env) insertProgress(t testing.TB, ups ...Update) {
	t.Helper()
	if len(ups) == 0 {
		return
	}
	ctx := ctxT(t)
	b, err := e.ch.PrepareBatch(ctx, "INSERT INTO "+e.db+".progress (user_id, biz, item_id, position_ms, duration_ms, finished, device, updated_at, ts_ms, version)")
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range ups {
		fin := uint8(0)
		if e.s.Finished(u.PositionMs, u.DurationMs) {
			fin = 1
		}
		if err := b.Append(u.UserID, u.Biz.String(), u.ItemID, u.PositionMs, u.DurationMs, fin, u.Device,
			time.UnixMilli(u.TS), uint64(u.TS), uint64(u.TS)); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
}

func (e *env) progress(t testing.TB, uid uint64, biz ingest.Biz, item uint64) (Entry, bool) {
	t.Helper()
	k := ItemKey{biz, item}
	m, err := e.s.Progress(ctxT(t), uid, []ItemKey{k})
	if err != nil {
		t.Fatal(err)
	}
	en, ok := m[k]
	return en, ok
}

// all pages through the whole history with the given page size.
func (e *env) all(t testing.TB, uid uint64, biz ingest.Biz, limit int) []Entry {
	t.Helper()
	var out []Entry
	cur := ""
	for i := 0; ; i++ {
		p, err := e.s.History(ctxT(t), uid, biz, limit, cur)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Items) > limit {
			t.Fatalf("page of %d items, limit %d", len(p.Items), limit)
		}
		out = append(out, p.Items...)
		if p.NextCursor == "" {
			return out
		}
		if len(p.Items) == 0 {
			t.Fatalf("empty page with a next cursor")
		}
		cur = p.NextCursor
		if i > 10000 {
			t.Fatal("endless paging")
		}
	}
}

func items(es []Entry) []uint64 {
	out := make([]uint64, len(es))
	for i, e := range es {
		out[i] = e.ItemID
	}
	return out
}

func up(uid uint64, item uint64, pos uint64, ts int64) Update {
	return Update{UserID: uid, Biz: ingest.BizAudio, ItemID: item, PositionMs: pos, DurationMs: 600_000, TS: ts, Device: "ios"}
}

// t0 is a day ago: ops older than TombstoneTTL are not restored to Redis.
var t0 = time.Now().Add(-24 * time.Hour).UnixMilli()
