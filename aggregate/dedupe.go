package aggregate

import (
	"context"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"
)

// dedupeScript marks a client event_id as seen by the record at (partition,
// offset). It returns 1 when the record is the first with that id, or is that
// very record replayed after a crash (the mark holds its own position), and 0
// for a retry that another record already carried. Keying the mark by the
// record's position is what keeps replays exact: a replay is not a retry.
var dedupeScript = redis.NewScript(`
local ok = redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2])
if ok then return 1 end
if redis.call('GET', KEYS[1]) == ARGV[1] then return 1 end
return 0`)

// markDuplicates flags rows whose client event_id an earlier record of the
// same user already carried. One pipelined round trip for all rows.
func (a *Aggregator) markDuplicates(ctx context.Context, parts []*partition) (int, error) {
	pipe := a.cfg.Redis.Pipeline()
	type ref struct {
		row *eventRow
		cmd *redis.Cmd
	}
	var refs []ref
	ttl := strconv.FormatInt(a.cfg.DedupeWindow.Milliseconds(), 10)
	for _, p := range parts {
		for i := range p.events {
			r := &p.events[i]
			if !r.dedupe {
				continue
			}
			// Hash-tagged by user: a user's records share a partition and a
			// Redis Cluster slot.
			k := a.cfg.Prefix + "{" + strconv.FormatUint(r.ev.UserID, 10) + "}:eid:" + r.ev.EventID
			pos := strconv.FormatInt(int64(p.id), 10) + ":" + strconv.FormatInt(r.offset, 10)
			refs = append(refs, ref{r, dedupeScript.EvalSha(ctx, pipe, []string{k}, pos, ttl)})
		}
	}
	if len(refs) == 0 {
		return 0, nil
	}
	if _, err := pipe.Exec(ctx); err != nil {
		if redis.HasErrorPrefix(err, "NOSCRIPT") {
			// Redis restarted or failed over since we loaded the script:
			// load it and let the caller's retry run the batch again.
			if lerr := dedupeScript.Load(ctx, a.cfg.Redis).Err(); lerr != nil {
				err = fmt.Errorf("%w; reloading the script: %v", err, lerr)
			}
		}
		return 0, fmt.Errorf("cannot check %d event ids in Redis: %w", len(refs), err)
	}
	dups := 0
	for _, rf := range refs {
		v, err := rf.cmd.Int()
		if err != nil {
			return 0, fmt.Errorf("cannot check event id %q: %w", rf.row.ev.EventID, err)
		}
		rf.row.duplicate = v == 0
		if rf.row.duplicate {
			dups++
		}
	}
	return dups, nil
}
