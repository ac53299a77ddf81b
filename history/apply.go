package history

import (
	"context"
	"fmt"
	"strconv"
	"strings"
)

// Apply writes the aggregator's collapsed updates to Redis with
// compare-and-set: one apply.lua call per user, all in one pipeline (one
// round trip for the whole slice).
//
// The rules, per (user, biz, item), in apply.lua:
//   - Tombstones: an update with TS <= the item's delete time, or <= a clear
//     of its biz or of everything, is dropped (ties go to the delete).
//   - Effective values: a Play update, and an update with PositionMs == 0
//     (an "accidental zero"), keep the stored position; either one, and an
//     update with DurationMs == 0, keeps the stored duration. With nothing
//     stored, the update's own values are used.
//   - Ordering: the update wins when (TS, position, duration, device) of its
//     effective values is greater than the stored one, compared in that
//     order (numbers numerically, device bytewise). Newer TS always wins; the
//     rest only breaks ties, deterministically. Equal means same content.
//   - Hide: a winner that changes position or duration clears the hide mark.
//   - Pause: while paused (since ps), an update with TS >= ps updates the
//     progress hash but does not add the item to the timeline or move it.
//
// applied[i] reports whether updates[i] is now the stored progress (it won,
// or it equals what is stored: a retry of the same slice after an error
// reports the same answers, so the aggregator never loses a row for
// ClickHouse). For applied updates Apply rewrites ups[i].PositionMs and
// ups[i].DurationMs to the effective values, so the row the aggregator
// writes to ClickHouse's progress table matches Redis.
func (s *Store) Apply(ctx context.Context, ups []Update) (applied []bool, err error) {
	if len(ups) == 0 {
		return nil, nil
	}
	// group by user, keeping input order within a user
	type group struct {
		uid uint64
		idx []int
	}
	pos := make(map[uint64]int, len(ups))
	var groups []group
	for i, u := range ups {
		if checkBiz(u.Biz, false) != nil || u.ItemID == 0 || u.TS <= 0 {
			return nil, fmt.Errorf("history apply: update #%d (user %d, biz %d, item %d, ts %d) is invalid", i, u.UserID, u.Biz, u.ItemID, u.TS)
		}
		g, ok := pos[u.UserID]
		if !ok {
			g = len(groups)
			pos[u.UserID] = g
			groups = append(groups, group{uid: u.UserID})
		}
		groups[g].idx = append(groups[g].idx, i)
	}
	head := []any{s.max, s.ratioS, FinishedTailMs, FinishedTailMinMs}
	cmds, err := evalShaPipelined(ctx, s.rdb, applyScript, len(groups), func(gi int) ([]string, []any) {
		g := groups[gi]
		k := s.keys(g.uid)
		argv := make([]any, 0, len(head)+7*len(g.idx))
		argv = append(argv, head...)
		for _, i := range g.idx {
			u := &ups[i]
			play := "0"
			if u.Play {
				play = "1"
			}
			argv = append(argv, member(u.Biz, u.ItemID), uint8(u.Biz), u.TS, u.PositionMs, u.DurationMs, u.Device, play)
		}
		return k[:], argv
	})
	if err != nil {
		return nil, fmt.Errorf("history apply %d updates of %d users: %w", len(ups), len(groups), err)
	}
	applied = make([]bool, len(ups))
	type eff struct{ pos, dur uint64 }
	effs := make([]eff, len(ups))
	for gi, c := range cmds {
		res, err := c.StringSlice()
		if err == nil && len(res) != len(groups[gi].idx) {
			err = fmt.Errorf("%d replies for %d updates", len(res), len(groups[gi].idx))
		}
		if err != nil {
			return nil, fmt.Errorf("history apply user %d: %w", groups[gi].uid, err)
		}
		for j, r := range res {
			if r == "0" {
				continue
			}
			i := groups[gi].idx[j]
			p, d, ok := strings.Cut(strings.TrimPrefix(r, "1,"), ",")
			pv, err1 := strconv.ParseUint(p, 10, 64)
			dv, err2 := strconv.ParseUint(d, 10, 64)
			if !ok || err1 != nil || err2 != nil {
				return nil, fmt.Errorf("history apply user %d: bad reply %q", groups[gi].uid, r)
			}
			applied[i] = true
			effs[i] = eff{pv, dv}
		}
	}
	// mutate only once everything decoded: on error the caller retries the
	// same, untouched slice
	for i, ok := range applied {
		if ok {
			ups[i].PositionMs, ups[i].DurationMs = effs[i].pos, effs[i].dur
		}
	}
	return applied, nil
}
