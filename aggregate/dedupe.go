package aggregate

import (
	"context"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/redis/go-redis/v9"

	"github.com/onair/onair/history"
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
// round trips per flush, whatever its size (and, after a Redis loss, one
// ClickHouse query: see lostClaims).
func (a *Aggregator) markDuplicates(ctx context.Context, parts []*partition) (int, error) {
	order := a.claimGroups(parts)
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
	// Read after the claims: if Redis lost data before they were read, the
	// epoch says so (see lostClaims).
	ep, err := a.cfg.History.Epoch(ctx)
	if err != nil {
		return 0, err
	}
	var unclaimed []*eventRow
	for _, g := range order {
		for i, v := range g.read.Val() {
			if v == nil {
				unclaimed = append(unclaimed, g.rows[i])
			}
		}
	}
	lost, err := a.lostClaims(ctx, ep, unclaimed)
	if err != nil {
		return 0, err
	}
	dups := 0
	pipe = a.cfg.Redis.Pipeline()
	for _, g := range order {
		claims, n := g.claim(lost)
		dups += n
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

// claimGroup is the rows of one claims hash: one user, one ts bucket.
type claimGroup struct {
	key  string
	rows []*eventRow
	pos  []string // each row's "partition:offset"
	read *redis.SliceCmd
}

// claimGroups groups the rows to dedupe by claims hash, in first-seen order.
func (a *Aggregator) claimGroups(parts []*partition) []*claimGroup {
	type groupKey struct {
		user   uint64
		bucket int64
	}
	groups := map[groupKey]*claimGroup{}
	var order []*claimGroup
	var last *claimGroup
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
					g = &claimGroup{key: a.cfg.Prefix + "{" + strconv.FormatUint(gk.user, 10) + "}:e:" + strconv.FormatInt(gk.bucket, 36)}
					groups[gk] = g
					order = append(order, g)
				}
				last, lastKey = g, gk
			}
			g.rows = append(g.rows, r)
			g.pos = append(g.pos, partPrefix+strconv.FormatInt(r.offset, 10))
		}
	}
	return order
}

// claim decides each row of g from the claims read (and those Redis lost,
// found in ClickHouse): it flags duplicates and returns the HSET arguments
// of the claims to write and the number of duplicates.
func (g *claimGroup) claim(lost map[claimKey]string) (claims []any, dups int) {
	vals := g.read.Val()
	claims = make([]any, 0, 2*len(g.rows))
	claimed := make(map[string]string, len(g.rows)) // within this flush
	for i, r := range g.rows {
		owner, _ := vals[i].(string)
		if o, ok := claimed[r.ev.EventID]; ok {
			owner = o
		} else if o, ok := lost[claimKey{r.ev.UserID, r.ev.TS / dedupeBucketMs, r.ev.EventID}]; ok && owner == "" {
			// a claim Redis lost: put it back
			owner = o
			claimed[r.ev.EventID] = o
			claims = append(claims, r.ev.EventID, o)
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
	return claims, dups
}

// maxClientAhead is how far ingest lets a client ts run ahead of the
// server clock: an event accepted before a loss has a ts before the loss
// plus this.
const maxClientAhead = 5 * time.Minute

// claimKey names one claim: the user, the ts bucket and the client id.
type claimKey struct {
	user   uint64
	bucket int64
	id     string
}

// lostClaims finds, in onair.events, the claims Redis may have lost: those
// of rows without a claim that are possibly retries of an event accepted
// before the current epoch began after a loss (ts before the loss plus
// maxClientAhead, within DedupeWindow of it). Only the first minutes after
// a loss have such rows, besides late retries: ClickHouse stays off the
// dedupe path otherwise. The events job before this one has landed
// (one job at a time), so every claim it made is in onair.events.
func (a *Aggregator) lostClaims(ctx context.Context, ep history.Epoch, rows []*eventRow) (map[claimKey]string, error) {
	if ep.LostAt == 0 || time.Since(time.UnixMilli(ep.LostAt)) > a.cfg.DedupeWindow {
		return nil, nil
	}
	horizon := ep.LostAt + maxClientAhead.Milliseconds()
	users, ids := map[uint64]bool{}, map[string]bool{}
	lo, hi := int64(math.MaxInt64), int64(0)
	for _, r := range rows {
		if r.ev.TS < horizon {
			users[r.ev.UserID], ids[r.ev.EventID] = true, true
			lo, hi = min(lo, r.ev.TS), max(hi, r.ev.TS)
		}
	}
	if len(ids) == 0 {
		return nil, nil
	}
	out, err := claimsIn(ctx, a.cfg.ClickHouse, a.cfg.Database, slices.Collect(maps.Keys(users)), slices.Collect(maps.Keys(ids)), lo, hi)
	if err != nil {
		return nil, err
	}
	a.m.lostClaims.Add(float64(len(out)))
	return out, nil
}

// claimsIn looks up, in onair.events, the claims of ids by users with a ts
// in lo..hi. Every client value is a bound parameter (issue 26: the ids
// were quoted by a hand-written escaper): clickhouse-go formats them, the
// one quoting the repository's other queries use, with NUL bytes and
// invalid UTF-8 kept as the bytes they are.
func claimsIn(ctx context.Context, ch driver.Conn, db string, users []uint64, ids []string, lo, hi int64) (map[claimKey]string, error) {
	us, is := make([]any, len(users)), make([]any, len(ids))
	for i, u := range users {
		us[i] = u
	}
	for i, id := range ids {
		is[i] = id
	}
	// A GroupSet is bound as the tuple (a, b, ...) that IN takes; a plain
	// slice would be an Array.
	res, err := ch.Query(ctx, "SELECT user_id, event_id, ts_ms, kafka_partition, kafka_offset FROM "+db+
		".events WHERE user_id IN ? AND ts_ms >= ? AND ts_ms <= ? AND event_id IN ?",
		clickhouse.GroupSet{Value: us}, uint64(lo), uint64(hi), clickhouse.GroupSet{Value: is})
	if err != nil {
		return nil, fmt.Errorf("cannot look up %d event ids of %d users in ClickHouse after a Redis loss: %w", len(ids), len(users), err)
	}
	defer res.Close()
	out := map[claimKey]string{}
	for res.Next() {
		var u, ts, off uint64
		var id string
		var p uint32
		if err := res.Scan(&u, &id, &ts, &p, &off); err != nil {
			return nil, err
		}
		out[claimKey{u, int64(ts) / dedupeBucketMs, id}] = strconv.FormatUint(uint64(p), 10) + ":" + strconv.FormatUint(off, 10)
	}
	return out, res.Err()
}
