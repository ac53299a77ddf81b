package aggregate

import (
	"context"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"
)

// dedupeBucketMs groups a user's event ids by the event's client ts. A
// client retry carries the same ts, so it always meets its first copy in
// the same bucket; one small hash per user and bucket is listpack-encoded by
// Redis, several times smaller than a key per event id.
const dedupeBucketMs = 10 * 60 * 1000

// markDuplicates flags rows whose client event_id an earlier record of the
// same user already carried, within the dedupe window.
//
// Each id is claimed in the hash with the claiming record's (partition,
// offset) as value. An id already claimed is a duplicate unless the claim is
// the row's own position: then the row is a replay of that very record after
// a crash, which must be inserted (it was not, or the ClickHouse watermark
// would have skipped it).
//
// Claims are read (HMGET) and then written (HSET) per hash, not set
// atomically per id: a user's records live in one partition, which one
// aggregator owns, so nobody else claims that user's ids meanwhile. Two
// round trips per flush, whatever its size.
func (a *Aggregator) markDuplicates(ctx context.Context, parts []*partition) (int, error) {
	type group struct {
		key  string
		rows []*eventRow
		pos  []string
		read *redis.SliceCmd
	}
	type groupKey struct {
		user   uint64
		bucket int64
	}
	groups := map[groupKey]*group{}
	var order []*group
	var last *group
	var lastKey groupKey
	for _, p := range parts {
		partPrefix := strconv.FormatInt(int64(p.id), 10) + ":"
		for i := range p.events {
			r := &p.events[i]
			if !r.dedupe {
				continue
			}
			// A batch's events are consecutive and mostly share a bucket:
			// look the group up only when the user or bucket changes.
			gk := groupKey{user: r.ev.UserID, bucket: r.ev.TS / dedupeBucketMs}
			g := last
			if g == nil || gk != lastKey {
				g = groups[gk]
				if g == nil {
					// Hash-tagged by user, so a user's claims share a Redis Cluster slot.
					g = &group{key: a.cfg.Prefix + "{" + strconv.FormatUint(gk.user, 10) + "}:e:" + strconv.FormatInt(gk.bucket, 36)}
					groups[gk] = g
					order = append(order, g)
				}
				last, lastKey = g, gk
			}
			g.rows = append(g.rows, r)
			g.pos = append(g.pos, partPrefix+strconv.FormatInt(r.offset, 10))
		}
	}
	if len(order) == 0 {
		return 0, nil
	}
	pipe := a.cfg.Redis.Pipeline()
	for _, g := range order {
		ids := make([]string, len(g.rows))
		for i, r := range g.rows {
			ids[i] = r.ev.EventID
		}
		g.read = pipe.HMGet(ctx, g.key, ids...)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return 0, fmt.Errorf("cannot read event id claims of %d hashes: %w", len(order), err)
	}
	dups := 0
	pipe = a.cfg.Redis.Pipeline()
	for _, g := range order {
		vals := g.read.Val()
		claims := make([]any, 0, 2*len(g.rows))
		claimed := make(map[string]string, len(g.rows)) // within this flush
		for i, r := range g.rows {
			owner, _ := vals[i].(string)
			if o, ok := claimed[r.ev.EventID]; ok {
				owner = o
			}
			switch {
			case owner == "":
				claimed[r.ev.EventID] = g.pos[i]
				claims = append(claims, r.ev.EventID, g.pos[i])
			case owner != g.pos[i]:
				r.duplicate = true
				dups++
			}
		}
		if len(claims) > 0 {
			pipe.HSet(ctx, g.key, claims...)
			pipe.PExpire(ctx, g.key, a.cfg.DedupeWindow)
		}
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return 0, fmt.Errorf("cannot claim event ids in %d hashes: %w", len(order), err)
	}
	return dups, nil
}
