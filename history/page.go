package history

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// pageEntry is one timeline entry as Redis keeps it.
type pageEntry struct {
	member string
	score  int64
	value  string
}

// redisPage reads up to want timeline entries after cursor c (newest
// first, of members starting with pre) without a script: a round trip for
// the timeline range and the meta flags, then one for the values. Scripts
// cost Redis several times more than these commands (Lua tables, reply
// conversion), and reads are most of its load.
//
// The two round trips are not atomic, and need not be: an entry deleted or
// trimmed in between has no value and is left out, as it would be a moment
// later; one updated in between shows its newer value at the place the
// range found it, as a read a moment earlier would have. The trimmed flag
// is read again with the values, so a trim in between still sends the
// page on to ClickHouse.
//
// version is the user's version (meta "v") all reads saw, or "" when it
// changed between them (or was never set): only a page with a version may
// be cached.
func (s *Store) redisPage(ctx context.Context, uid uint64, c cursor, want int, pre string) (entries []pageEntry, trimmed bool, version string, err error) {
	k := s.keys(uid)
	maxs := "+inf"
	if !c.first() {
		maxs = strconv.FormatInt(c.score, 10)
	}
	// one more than wanted, because the cursor's own member is in range
	batch := int64(want + 1)
	if pre != "" {
		batch = int64(want * 4)
	}
	warmed := false
	var off int64
	// versionSeen folds one read of "v" into version: "" once any read
	// differs from the first.
	first := true
	versionSeen := func(v any) {
		str, _ := v.(string)
		if first {
			version, first = str, false
		} else if str != version {
			version = ""
		}
	}
	for {
		var meta *redis.SliceCmd
		var rng *redis.ZSliceCmd
		_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			meta = p.HMGet(ctx, k[4], "w", "x", "v")
			rng = p.ZRevRangeByScoreWithScores(ctx, k[0], &redis.ZRangeBy{Max: maxs, Min: "-inf", Offset: off, Count: batch})
			return nil
		})
		if err != nil {
			return nil, false, "", fmt.Errorf("history page user %d: %w", uid, err)
		}
		if s.ch != nil && meta.Val()[0] == nil {
			// not known to be complete: fill from ClickHouse, then start over
			if warmed {
				return nil, false, "", fmt.Errorf("history page user %d: still cold after warming", uid)
			}
			if err := s.warm(ctx, uid); err != nil {
				return nil, false, "", err
			}
			warmed, entries, off, first = true, entries[:0], 0, true
			continue
		}
		versionSeen(meta.Val()[2])
		zs := rng.Val()
		ms := make([]string, 0, len(zs))
		scores := make([]int64, 0, len(zs))
		for _, z := range zs {
			m, _ := z.Member.(string)
			sc := int64(z.Score)
			if !c.first() && sc == c.score && m >= c.member {
				continue // at or before the cursor
			}
			if pre != "" && !strings.HasPrefix(m, pre) {
				continue
			}
			ms, scores = append(ms, m), append(scores, sc)
		}
		trimmed = meta.Val()[1] != nil
		if len(ms) > 0 {
			var vals, again *redis.SliceCmd
			_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
				vals = p.HMGet(ctx, k[1], ms...)
				again = p.HMGet(ctx, k[4], "x", "v")
				return nil
			})
			if err != nil {
				return nil, false, "", fmt.Errorf("history page user %d: %w", uid, err)
			}
			trimmed = again.Val()[0] != nil
			versionSeen(again.Val()[1])
			for i, v := range vals.Val() {
				if str, ok := v.(string); ok && len(entries) < want {
					entries = append(entries, pageEntry{member: ms[i], score: scores[i], value: str})
				}
			}
		}
		if len(entries) >= want || int64(len(zs)) < batch {
			return entries, trimmed, version, nil
		}
		off += batch
	}
}
