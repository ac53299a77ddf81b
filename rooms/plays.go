package rooms

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/onair/onair/ingest"
	"github.com/onair/onair/internal/refusal"
)

// Play leaderboards count `play` events per item in calendar windows of
// UTC: the current hour, day (from 00:00) and ISO week (from Monday
// 00:00). They are derived from ClickHouse's item_plays_hourly rollup,
// which holds every event exactly once, so replays of the aggregator can
// never double a count; one node at a time (a Redis lock) recomputes them
// every PlaysRefresh and writes each window's key in one transaction. A
// key expires PlaysGrace after its window ends; a lost key comes back at
// the next refresh. Reads never touch ClickHouse: Redis, through a
// per-node cache of PlaysCache.

// Windows of the play leaderboards.
var Windows = []string{"hour", "day", "week"}

// PlaysTop is how many items each window keeps per business line.
const PlaysTop = 100

// PlayEntry is one line of a play leaderboard.
type PlayEntry struct {
	ItemID uint64 `json:"item_id"`
	Score  uint64 `json:"score"`
}

// window returns the bounds of the window name containing t.
func window(name string, t time.Time) (start, end time.Time, ok bool) {
	t = t.UTC()
	switch name {
	case "hour":
		start = t.Truncate(time.Hour)
		return start, start.Add(time.Hour), true
	case "day":
		start = time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
		return start, start.AddDate(0, 0, 1), true
	case "week":
		day := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
		start = day.AddDate(0, 0, -((int(day.Weekday()) + 6) % 7))
		return start, start.AddDate(0, 0, 7), true
	}
	return time.Time{}, time.Time{}, false
}

func (b *Board) playsKey(biz ingest.Biz, win string, start time.Time) string {
	return b.cfg.Prefix + "{lbp:" + biz.String() + ":" + win + "}:" + strconv.FormatInt(start.Unix(), 10)
}

// playsCache is a node's copy of recently read leaderboards.
type playsCache struct {
	mu      sync.Mutex
	entries map[string]playsEntry
}

type playsEntry struct {
	items   []PlayEntry
	fetched time.Time
}

// Plays returns the most played items of biz in the current window,
// highest first, at most limit (≤ PlaysTop).
func (b *Board) Plays(ctx context.Context, biz ingest.Biz, win string, limit int) ([]PlayEntry, error) {
	start, _, ok := window(win, b.now())
	if !ok {
		return nil, refusal.Invalidf("window", "must be one of hour, day, week")
	}
	key := b.playsKey(biz, win, start)
	c := &b.plays
	c.mu.Lock()
	e, hit := c.entries[key]
	c.mu.Unlock()
	if !hit || time.Since(e.fetched) > b.cfg.PlaysCache {
		zs, err := b.rdb.ZRevRangeWithScores(ctx, key, 0, PlaysTop-1).Result()
		if err != nil {
			b.m.failures.WithLabelValues("redis").Inc()
			return nil, unavailable("read play leaderboard", err)
		}
		e = playsEntry{items: make([]PlayEntry, 0, len(zs)), fetched: time.Now()}
		for _, z := range zs {
			id, _ := strconv.ParseUint(z.Member.(string), 10, 64)
			e.items = append(e.items, PlayEntry{ItemID: id, Score: uint64(z.Score)})
		}
		c.mu.Lock()
		for k, old := range c.entries { // windows roll over: drop stale ones
			if time.Since(old.fetched) > time.Minute {
				delete(c.entries, k)
			}
		}
		c.entries[key] = e
		c.mu.Unlock()
	}
	return e.items[:min(limit, len(e.items))], nil
}

// refreshPlaysLoop recomputes the play leaderboards every PlaysRefresh
// while it holds the cluster-wide refresh turn.
func (b *Board) refreshPlaysLoop(ctx context.Context) {
	var buf [8]byte
	_, _ = rand.Read(buf[:])
	node := hex.EncodeToString(buf[:])
	t := time.NewTicker(b.cfg.PlaysRefresh)
	defer t.Stop()
	for {
		lock := b.cfg.Prefix + "{lbp}:lock"
		won, err := b.rdb.SetNX(ctx, lock, node, b.cfg.PlaysRefresh*4/5).Result()
		if err == nil && won {
			err = b.RefreshPlays(ctx)
		}
		if err != nil && ctx.Err() == nil {
			b.m.failures.WithLabelValues("plays_refresh").Inc()
			b.log.Warn("play leaderboards not refreshed; retrying at the next tick", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// RefreshPlays recomputes every window's play leaderboards from
// ClickHouse and writes them to Redis.
func (b *Board) RefreshPlays(ctx context.Context) error {
	now := b.now()
	for _, win := range Windows {
		start, end, _ := window(win, now)
		top, err := b.queryPlays(ctx, start, end)
		if err != nil {
			return err
		}
		ttl := end.Sub(now) + b.cfg.PlaysGrace
		// One transaction per key: each key is an owner of its own (Redis
		// Cluster slots), and readers never see a half-written list.
		for _, biz := range ingest.Bizes {
			key := b.playsKey(biz, win, start)
			pipe := b.rdb.TxPipeline()
			pipe.Del(ctx, key)
			if zs := top[biz]; len(zs) > 0 {
				pipe.ZAdd(ctx, key, zs...)
				pipe.PExpire(ctx, key, ttl)
			}
			if _, err := pipe.Exec(ctx); err != nil {
				return fmt.Errorf("write the %s play leaderboard of %s: %w", win, biz, err)
			}
		}
	}
	b.m.refreshes.Inc()
	return nil
}

// queryPlays reads the top PlaysTop items per business line over
// [start, end) from the hourly rollup (sum of plays; ties by item id).
func (b *Board) queryPlays(ctx context.Context, start, end time.Time) (map[ingest.Biz][]redis.Z, error) {
	q := fmt.Sprintf(`SELECT toString(biz) AS b, item_id, sum(plays) AS n FROM %s.item_plays_hourly
WHERE hour >= toDateTime(%d) AND hour < toDateTime(%d) AND biz != ''
GROUP BY b, item_id HAVING n > 0 ORDER BY b, n DESC, item_id LIMIT %d BY b`, b.cfg.Database, start.Unix(), end.Unix(), PlaysTop)
	rows, err := b.cfg.ClickHouse.Query(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("query play rollups: %w", err)
	}
	defer rows.Close()
	out := map[ingest.Biz][]redis.Z{}
	for rows.Next() {
		var name string
		var item, n uint64
		if err := rows.Scan(&name, &item, &n); err != nil {
			return nil, err
		}
		if biz, ok := ingest.ParseBiz(name); ok {
			out[biz] = append(out[biz], redis.Z{Score: float64(n), Member: item})
		}
	}
	return out, rows.Err()
}
