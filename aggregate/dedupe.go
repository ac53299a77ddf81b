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
// Each id is claimed with HSETNX, the value being the claiming record's
// (partition, offset). A failed claim is a duplicate unless the stored value
// is the row's own position: then it is a replay of the very same record
// after a crash, which must be inserted (it was not, or the ClickHouse
// watermark would have skipped it). Native commands in one pipeline, plus a
// second round trip only when claims fail.
func (a *Aggregator) markDuplicates(ctx context.Context, parts []*partition) (int, error) {
	type ref struct {
		row *eventRow
		key string
		pos string
		cmd *redis.BoolCmd
	}
	var refs []ref
	ttl := a.cfg.DedupeWindow
	pipe := a.cfg.Redis.Pipeline()
	expired := map[string]bool{}
	for _, p := range parts {
		for i := range p.events {
			r := &p.events[i]
			if !r.dedupe {
				continue
			}
			// Hash-tagged by user: a user's records share a partition and a
			// Redis Cluster slot.
			k := a.cfg.Prefix + "{" + strconv.FormatUint(r.ev.UserID, 10) + "}:e:" + strconv.FormatInt(r.ev.TS/dedupeBucketMs, 36)
			pos := strconv.FormatInt(int64(p.id), 10) + ":" + strconv.FormatInt(r.offset, 10)
			refs = append(refs, ref{row: r, key: k, pos: pos, cmd: pipe.HSetNX(ctx, k, r.ev.EventID, pos)})
			if !expired[k] {
				expired[k] = true
				pipe.PExpire(ctx, k, ttl)
			}
		}
	}
	if len(refs) == 0 {
		return 0, nil
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return 0, fmt.Errorf("cannot claim %d event ids in Redis: %w", len(refs), err)
	}
	var conflicts []int
	for i, rf := range refs {
		if !rf.cmd.Val() {
			conflicts = append(conflicts, i)
		}
	}
	if len(conflicts) == 0 {
		return 0, nil
	}
	pipe = a.cfg.Redis.Pipeline()
	gets := make([]*redis.StringCmd, len(conflicts))
	for j, i := range conflicts {
		gets[j] = pipe.HGet(ctx, refs[i].key, refs[i].row.ev.EventID)
	}
	if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
		return 0, fmt.Errorf("cannot read %d claimed event ids: %w", len(conflicts), err)
	}
	dups := 0
	for j, i := range conflicts {
		owner, err := gets[j].Result()
		if err == redis.Nil {
			// Expired between the two round trips: the claim is moot, the
			// row is not a retry within the window.
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("cannot read claim of event id %q: %w", refs[i].row.ev.EventID, err)
		}
		if owner != refs[i].pos {
			refs[i].row.duplicate = true
			dups++
		}
	}
	return dups, nil
}
