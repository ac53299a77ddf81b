package history

import (
	"context"
	"fmt"
	"sync"

	"github.com/redis/go-redis/v9"

	"github.com/onair/onair/ingest"
	"github.com/onair/onair/internal/refusal"
)

// Page is one page of a user's history, newest first.
// A Page may be shared with other callers (see pageCache): treat it as
// read-only.
type Page struct {
	Items []Entry
	// NextCursor continues after the last item; "" at the end.
	NextCursor string
	// memo keeps the rendered form of a cached page (see Render).
	memo *pageMemo
}

type pageMemo struct {
	once sync.Once
	b    []byte
}

// Render returns render(p). For a page the cache holds, it is computed once
// and shared by every caller served that page, so render must depend on p
// alone, and its result must not be modified.
func (p Page) Render(render func(Page) []byte) []byte {
	if p.memo == nil {
		return render(p)
	}
	p.memo.once.Do(func() { p.memo.b = render(p) })
	return p.memo.b
}

var bizPrefix = [...]string{"", "1:", "2:", "3:", "4:", "5:", "6:"}

func checkLimit(limit int) (int, error) {
	if limit == 0 {
		return DefaultLimit, nil
	}
	if limit < 1 || limit > MaxLimit {
		return 0, ErrBadLimit
	}
	return limit, nil
}

// History returns a page of the user's timeline, newest first (by the time
// the item entered or last moved in the timeline), optionally of one biz.
// limit 0 means DefaultLimit; it must be at most MaxLimit. A page normally
// costs two Redis round trips (see redisPage); past the items Redis keeps it
// continues from ClickHouse in the same order with the same cursor format.
func (s *Store) History(ctx context.Context, userID uint64, biz ingest.Biz, limit int, cur string) (Page, error) {
	limit, err := checkLimit(limit)
	if err != nil {
		return Page{}, err
	}
	if err := checkBiz(biz, true); err != nil {
		return Page{}, err
	}
	c, err := decodeCursor(cur)
	if err != nil {
		return Page{}, err
	}
	pk := pageKey{user: userID, biz: biz, limit: limit, cursor: cur}
	if p, ok := s.cachedPage(ctx, pk); ok {
		return p, nil
	}
	r, trimmed, version, err := s.redisPage(ctx, userID, c, limit+1, bizPrefix[biz])
	if err != nil {
		return Page{}, err
	}
	// cache pages Redis served completely (see pageCache)
	done := func(p Page) (Page, error) {
		if s.pages != nil && version != "" {
			p.memo = &pageMemo{}
			s.pages.put(pk, version, p)
		}
		return p, nil
	}
	items := make([]Entry, 0, min(limit+1, len(r)))
	last := c
	for _, pe := range r {
		key, ok := parseMember(pe.member)
		e, _, okv := decodeValue(key, pe.value)
		if !ok || !okv {
			s.log.Warn("history: skipping undecodable entry", "user", userID, "member", pe.member, "value", pe.value)
			continue
		}
		if len(items) == limit {
			// there is one more: the page ends at the previous item
			return done(Page{Items: items, NextCursor: last.encode()})
		}
		items = append(items, e)
		last = cursor{score: pe.score, member: pe.member}
	}
	if !trimmed || s.ch == nil {
		return done(Page{Items: items})
	}
	// Redis has no more: the rest is only in ClickHouse
	deep, err := s.deep(ctx, userID, biz, last, limit+1-len(items))
	if err != nil {
		return Page{}, err
	}
	for _, e := range deep {
		if len(items) == limit {
			return Page{Items: items, NextCursor: last.encode()}, nil
		}
		items = append(items, e.Entry)
		last = cursor{score: e.UpdatedAt, member: e.member}
	}
	return Page{Items: items}, nil
}

// deep reads timeline entries after c from ClickHouse, skipping items Redis
// still holds: their Redis position is the one pages already showed, and
// ClickHouse may lag behind Redis by a flush.
func (s *Store) deep(ctx context.Context, uid uint64, biz ingest.Biz, c cursor, n int) ([]chEntry, error) {
	o, err := s.loadOps(ctx, uid)
	if err != nil {
		return nil, err
	}
	tkey := s.keys(uid)[0]
	skip := func(rows []chEntry) (map[string]bool, error) {
		ms := make([]string, len(rows))
		for i, e := range rows {
			ms[i] = e.member
		}
		sc, err := s.rdb.ZMScore(ctx, tkey, ms...).Result()
		if err != nil {
			return nil, fmt.Errorf("history: cannot check Redis timeline of user %d: %w", uid, err)
		}
		in := make(map[string]bool)
		for i, v := range sc {
			if v != 0 {
				in[ms[i]] = true
			}
		}
		return in, nil
	}
	return s.chScan(ctx, uid, biz, c, n, o, false, skip)
}

// cachedPage returns the cached page for k when Redis confirms, in one
// command, that the user is warm and unchanged since it was read.
func (s *Store) cachedPage(ctx context.Context, k pageKey) (Page, bool) {
	if s.pages == nil {
		return Page{}, false
	}
	cp, ok := s.pages.get(k)
	if ok {
		meta, err := s.rdb.HMGet(ctx, s.keys(k.user)[4], "w", "v").Result()
		if err == nil && (s.ch == nil || meta[0] != nil) && meta[1] == cp.version {
			s.pages.hits.Inc()
			return cp.page, true
		}
	}
	s.pages.misses.Inc()
	return Page{}, false
}

// Progress returns the user's stored progress for keys; keys without
// progress are absent from the map. Items Redis no longer keeps are read
// from ClickHouse.
func (s *Store) Progress(ctx context.Context, userID uint64, keys []ItemKey) (map[ItemKey]Entry, error) {
	out := make(map[ItemKey]Entry, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	if len(keys) > 1000 {
		return nil, refusal.Invalidf("items", "%d items, at most 1000", len(keys))
	}
	fields := make([]string, len(keys))
	for i, key := range keys {
		if err := checkBiz(key.Biz, false); err != nil {
			return nil, err
		}
		fields[i] = member(key.Biz, key.ItemID)
	}
	k := s.keys(userID)
	var vals, meta *redis.SliceCmd
	for attempt := 0; ; attempt++ {
		_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			vals = p.HMGet(ctx, k[1], fields...)
			meta = p.HMGet(ctx, k[4], "w", "x")
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("history progress user %d: %w", userID, err)
		}
		if meta.Val()[0] == nil && s.ch != nil && attempt == 0 {
			if err := s.warm(ctx, userID); err != nil {
				return nil, err
			}
			continue
		}
		break
	}
	var missing []ItemKey
	for i, v := range vals.Val() {
		str, ok := v.(string)
		if !ok {
			missing = append(missing, keys[i])
			continue
		}
		if e, _, ok := decodeValue(keys[i], str); ok {
			out[keys[i]] = e
		}
	}
	if len(missing) == 0 || meta.Val()[1] == nil || s.ch == nil {
		return out, nil
	}
	o, err := s.loadOps(ctx, userID)
	if err != nil {
		return nil, err
	}
	rows, err := s.chItems(ctx, userID, missing, o)
	if err != nil {
		return nil, err
	}
	for _, e := range rows {
		out[e.Key()] = e.Entry
	}
	return out, nil
}

// Continue returns the "continue watching" row: items of the timeline with
// a resume point (position > 0) that are neither finished nor hidden,
// newest first. It reads only what Redis keeps (MaxEntries newest).
func (s *Store) Continue(ctx context.Context, userID uint64, biz ingest.Biz, limit int) ([]Entry, error) {
	limit, err := checkLimit(limit)
	if err != nil {
		return nil, err
	}
	if err := checkBiz(biz, true); err != nil {
		return nil, err
	}
	r, err := s.continueRows(ctx, userID, limit, bizPrefix[biz])
	if err != nil {
		return nil, err
	}
	out := make([]Entry, 0, len(r)/2)
	for i := 0; i+1 < len(r); i += 2 {
		key, ok := parseMember(r[i])
		if !ok {
			continue
		}
		if e, _, ok := decodeValue(key, r[i+1]); ok {
			out = append(out, e)
		}
	}
	return out, nil
}

// continueRows runs continue.lua: member, value pairs. When ClickHouse is
// configured the script answers {"cold"} for a user whose Redis state is
// not known to be complete (keys lost, or created by the aggregator before
// any read): the user is warmed from ClickHouse once (one loader per user)
// and the script runs again.
func (s *Store) continueRows(ctx context.Context, userID uint64, limit int, pre string) ([]string, error) {
	checkWarm := "0"
	if s.ch != nil {
		checkWarm = "1"
	}
	k := s.keys(userID)
	keys := []string{k[0], k[1], k[4]}
	for attempt := 0; ; attempt++ {
		r, err := continueScript.Run(ctx, s.rdb, keys, limit, pre, checkWarm).StringSlice()
		if err != nil {
			return nil, fmt.Errorf("history continue user %d: %w", userID, err)
		}
		if len(r) == 0 || r[0] != "cold" {
			return r, nil
		}
		if attempt > 0 {
			return nil, fmt.Errorf("history continue user %d: still cold after warming", userID)
		}
		if err := s.warm(ctx, userID); err != nil {
			return nil, err
		}
	}
}
