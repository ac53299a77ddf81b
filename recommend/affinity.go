package recommend

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The analytics rollup onair.user_affinity (user_id, kind 'tag'|'category',
// key, day, plays, listened_ms, skips; a summing table owned by analytics)
// is read in the background, never on a request: every AffinityEvery, for
// the listeners this node served since the last round, today and the 30
// days before are summed and written to Redis as r{uid}:c ("t:<tag>" /
// "c:<category>" → log(1+plays) − log(1+skips)), which the request path
// reads beside the feedback hash. Without the table (analytics not
// deployed), nothing happens and affinity comes from recent plays alone.
//
// Affinity is this package's word: the weight that orders personal slots.
// The analytics API's score over the same rollup (minutes + plays −
// 2 × skips, analytics.Engagement) is the engagement score, a figure for
// people; the log keeps a heavy listener's counts from swamping the
// recent ±1 feedback they are added to.

// seenListeners collects the listeners served since the last round.
type seenListeners struct {
	mu  sync.Mutex
	ids map[uint64]struct{}
}

const maxSeenListeners = 50_000

func (s *seenListeners) add(uid uint64) {
	s.mu.Lock()
	if s.ids == nil {
		s.ids = map[uint64]struct{}{}
	}
	if len(s.ids) < maxSeenListeners {
		s.ids[uid] = struct{}{}
	}
	s.mu.Unlock()
}

func (s *seenListeners) take() []uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]uint64, 0, len(s.ids))
	for id := range s.ids {
		out = append(out, id)
	}
	s.ids = nil
	return out
}

func (e *Engine) rollupKey(uid uint64) string {
	return e.cfg.Prefix + "r{" + strconv.FormatUint(uid, 10) + "}:c"
}

// runAffinity loads the rollup every AffinityEvery until ctx ends.
func (e *Engine) runAffinity(ctx context.Context) {
	t := time.NewTicker(e.cfg.AffinityEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		users := e.seen.take()
		if len(users) == 0 {
			continue
		}
		if err := e.loadAffinity(ctx, users); err != nil && ctx.Err() == nil {
			e.m.errors.WithLabelValues("affinity").Inc()
			e.log.Warn("cannot load the affinity rollup; personal slots use recent plays only", "listeners", len(users), "err", err)
		}
	}
}

// loadAffinity copies users' 30-day rollup into Redis, 1000 users a query.
func (e *Engine) loadAffinity(ctx context.Context, users []uint64) error {
	var exists uint8
	if err := e.cfg.ClickHouse.QueryRow(ctx, "EXISTS TABLE "+e.cfg.Database+".user_affinity").Scan(&exists); err != nil {
		return err
	}
	if exists == 0 {
		return nil
	}
	for len(users) > 0 {
		n := min(len(users), 1000)
		ids := make([]string, n)
		for i, u := range users[:n] {
			ids[i] = strconv.FormatUint(u, 10)
		}
		users = users[n:]
		rows, err := e.cfg.ClickHouse.Query(ctx, fmt.Sprintf(`SELECT user_id, toString(kind), key, sum(plays), sum(skips)
			FROM %s.user_affinity WHERE user_id IN (%s) AND day >= today() - 30 GROUP BY user_id, kind, key`,
			e.cfg.Database, strings.Join(ids, ",")))
		if err != nil {
			return err
		}
		byUser := map[uint64]map[string]any{}
		for rows.Next() {
			var uid, plays, skips uint64
			var kind, key string
			if err := rows.Scan(&uid, &kind, &key, &plays, &skips); err != nil {
				rows.Close()
				return err
			}
			if byUser[uid] == nil {
				byUser[uid] = map[string]any{}
			}
			w := math.Log1p(float64(plays)) - math.Log1p(float64(skips))
			byUser[uid][kind[:1]+":"+key] = strconv.FormatFloat(w, 'g', 4, 64)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		// Each listener's hash is replaced whole; every command touches one listener.
		pipe := e.cfg.Redis.Pipeline()
		for uid, fields := range byUser {
			k := e.rollupKey(uid)
			pipe.Del(ctx, k)
			pipe.HSet(ctx, k, fields)
			pipe.Expire(ctx, k, 2*e.cfg.AffinityEvery+time.Hour)
		}
		if len(byUser) == 0 {
			continue
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return err
		}
	}
	return nil
}
