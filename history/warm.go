package history

import (
	"context"
	"fmt"
	"strconv"
	"time"
)

// warmTimeout bounds one re-warm; it runs detached from the first caller's
// context because other callers wait on the same flight.
const warmTimeout = 10 * time.Second

// ensureWarm re-warms the user when Redis has no warm mark (never filled,
// or lost to a flush or failover). Without ClickHouse there is nothing to
// fill from.
func (s *Store) ensureWarm(ctx context.Context, uid uint64) error {
	if s.ch == nil {
		return nil
	}
	ok, err := s.rdb.HExists(ctx, s.keys(uid)[4], "w").Result()
	if err != nil {
		return fmt.Errorf("history: cannot check warm mark of user %d: %w", uid, err)
	}
	if ok {
		return nil
	}
	return s.warm(ctx, uid)
}

// warm fills the user's Redis keys from ClickHouse: the newest MaxEntries
// items (after deletes and clears), recent tombstones, the pause state and
// hide marks. Concurrent callers for one user share one load (singleflight);
// the warm mark it sets keeps an empty history from loading again. A caller
// that saw no mark just before a flight ended starts a new flight, so the
// flight checks the mark again before it loads.
func (s *Store) warm(ctx context.Context, uid uint64) error {
	ch := s.warmSF.DoChan(strconv.FormatUint(uid, 10), func() (any, error) {
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), warmTimeout)
		defer cancel()
		ok, err := s.rdb.HExists(wctx, s.keys(uid)[4], "w").Result()
		if err != nil {
			return nil, fmt.Errorf("history: cannot check warm mark of user %d: %w", uid, err)
		}
		if ok {
			return nil, nil
		}
		return nil, s.doWarm(wctx, uid)
	})
	select {
	case r := <-ch:
		return r.Err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Store) doWarm(ctx context.Context, uid uint64) error {
	start := time.Now()
	s.warms.Add(1)
	o, err := s.loadOps(ctx, uid)
	if err != nil {
		return err
	}
	rows, err := s.chScan(ctx, uid, 0, cursor{}, s.max+1, o, true, nil)
	if err != nil {
		return err
	}
	trimmed := "0"
	if len(rows) > s.max {
		trimmed, rows = "1", rows[:s.max]
	}
	argv := []any{s.max, o.pauseState, trimmed, 0}
	horizon := time.Now().Add(-TombstoneTTL).UnixMilli()
	n := 0
	for m, ts := range o.tomb {
		if ts >= horizon {
			argv = append(argv, m, ts)
			n++
		}
	}
	for b, ts := range o.wm {
		if ts > 0 {
			argv = append(argv, "c:"+strconv.Itoa(b), ts)
			n++
		}
	}
	argv[3] = n
	for _, e := range rows {
		tl := "0"
		if e.onTimeline {
			tl = "1"
		}
		argv = append(argv, e.member, e.UpdatedAt, encodeValue(e.Entry, e.hidden, e.posTS), tl)
	}
	k := s.keys(uid)
	if err := warmScript.Run(ctx, s.rdb, k[:], argv...).Err(); err != nil {
		return fmt.Errorf("history: cannot warm user %d: %w", uid, err)
	}
	s.log.Debug("history warmed from ClickHouse", "user", uid, "items", len(rows), "trimmed", trimmed, "took", time.Since(start))
	return nil
}
