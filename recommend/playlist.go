package recommend

import (
	"context"
	"errors"
	"sync"
	"time"
)

// Result is the body of GET /v1/stations/{id}/playlist and of the admin
// preview.
type Result struct {
	StationID uint64 `json:"station_id"`
	// Daypart is the daypart's name; nil when the clock has none at that
	// moment (then Items is empty).
	Daypart  *string   `json:"daypart"`
	StartsAt time.Time `json:"starts_at,omitzero"`
	EndsAt   time.Time `json:"ends_at,omitzero"`
	Items    []Entry   `json:"items"`
}

// Preview is the body of GET /v1/admin/stations/{id}/preview: a Result
// and the rules that gave way while building it, and why.
type Preview struct {
	Result
	Relaxed []Relaxed `json:"relaxed"`
}

// ErrNoStation: no station has that id.
var ErrNoStation = errors.New("recommend: no such station")

// Playlist returns listener's playlist of station at at (listener 0: the
// public one), at most limit items. It reads the listener's state from
// Redis (one round trip) and nothing else: no ClickHouse, no build unless
// no list was built ahead for at. When Redis fails the public list is
// served and the error is logged and counted.
func (e *Engine) Playlist(ctx context.Context, station, listener uint64, at time.Time, limit int) (Result, error) {
	r, _, err := e.playlist(ctx, station, listener, at, limit, true)
	return r, err
}

// Preview is Playlist with the relaxed rules, for operators.
func (e *Engine) Preview(ctx context.Context, station, listener uint64, at time.Time, limit int) (Preview, error) {
	r, relaxed, err := e.playlist(ctx, station, listener, at, limit, false)
	if relaxed == nil {
		relaxed = []Relaxed{}
	}
	return Preview{Result: r, Relaxed: relaxed}, err
}

// playlist serves Playlist (cached: reuse a listener's recent result) and
// Preview (never cached: operators ask about arbitrary instants).
func (e *Engine) playlist(ctx context.Context, station, listener uint64, at time.Time, limit int, cached bool) (Result, []Relaxed, error) {
	pl, st, ok := e.actors.public(station, at)
	if !ok {
		return Result{}, nil, ErrNoStation
	}
	r := Result{StationID: station, Items: []Entry{}}
	if pl == nil {
		return r, nil, nil
	}
	name := pl.Window.Name
	r.Daypart, r.StartsAt, r.EndsAt = &name, pl.Window.Start, pl.Window.End
	snap := e.actors.snap.Load()
	key := resultKey{station, listener, limit}
	if c, ok := e.results.get(key, pl, snap, e.cfg.Now()); ok && cached {
		r.Items = c.items
		return r, c.relaxed, nil
	}
	now := e.cfg.Now()
	ls, err := e.listenerState(ctx, listener, now)
	if err != nil {
		e.log.Warn("serving the public playlist: listener state unavailable", "station", station, "listener", listener, "err", err)
	}
	items, relaxed := Personalize(pl, snap, st, ls, Seed(listener, station, pl.Window), at, limit)
	r.Items = items
	if err == nil && listener != 0 && cached {
		e.results.put(key, cachedResult{pl: pl, snap: snap, items: items, relaxed: relaxed, expires: now.Add(resultTTL)})
	}
	return r, relaxed, nil
}

// resultTTL is how long a node reuses a listener's playlist while neither
// the public list nor the catalog snapshot changed. It only delays the
// listener's own feedback (a skip), by at most this much, well inside the
// 2 s promise; a catalog or schedule change is a new list or snapshot and
// is never served stale.
const resultTTL = 500 * time.Millisecond

type resultKey struct {
	station, listener uint64
	limit             int
}

type cachedResult struct {
	pl      *Playlist
	snap    *Snapshot
	items   []Entry
	relaxed []Relaxed
	expires time.Time
}

// resultCache holds recent personal playlists, sharded by listener.
type resultCache struct {
	shards [64]struct {
		mu sync.Mutex
		m  map[resultKey]cachedResult
	}
}

// maxCachedPerShard bounds memory: a full shard is emptied.
const maxCachedPerShard = 4096

func (c *resultCache) get(k resultKey, pl *Playlist, snap *Snapshot, now time.Time) (cachedResult, bool) {
	sh := &c.shards[k.listener%64]
	sh.mu.Lock()
	v, ok := sh.m[k]
	sh.mu.Unlock()
	if !ok || v.pl != pl || v.snap != snap || !now.Before(v.expires) {
		return cachedResult{}, false
	}
	return v, true
}

func (c *resultCache) put(k resultKey, v cachedResult) {
	sh := &c.shards[k.listener%64]
	sh.mu.Lock()
	if sh.m == nil || len(sh.m) >= maxCachedPerShard {
		sh.m = make(map[resultKey]cachedResult, 64)
	}
	sh.m[k] = v
	sh.mu.Unlock()
}
