package history

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Apply writes the aggregator's collapsed updates to Redis with
// compare-and-set: one apply.lua call per user, all in one pipeline (one
// round trip for the whole slice).
//
// The rules, per (user, biz, item), in apply.lua. The stored state is two
// independent maxima, so the result depends only on the set of reports ever
// applied, not on their order, on replays, or on how the aggregator grouped
// them into windows:
//   - Touch: the newest report by (TS, device) sets updated_at, the device
//     and the timeline score. Every report counts, play or progress, with or
//     without a position.
//   - Position: the newest report carrying a non-zero position, by (PosTS,
//     position, duration), sets the resume point. A play, or a report with
//     position 0 (an "accidental zero": a stop sent before playback began),
//     never wipes it. A position report with duration 0 keeps the duration.
//   - Tombstones: an update with TS <= the item's delete time, or <= a clear
//     of its biz or of everything, is dropped (ties go to the delete); a
//     position reported at or before it is ignored even if TS is newer.
//   - Hide: a change of position or duration clears the hide mark.
//   - Pause: while paused (since ps), an update with TS >= ps updates the
//     progress hash but does not add the item to the timeline or move it.
//
// applied[i] reports whether updates[i] is now part of the stored state (it
// won either maximum, or a retry of the same slice finds its own effect), so
// the aggregator never loses a row for ClickHouse. For applied updates Apply
// rewrites ups[i].TS, PositionMs, DurationMs, PosTS and Device to the stored state,
// so the row the aggregator writes to ClickHouse's progress table matches
// Redis, and sets Cold when that state may lack older state ClickHouse
// holds (see Update.Cold).
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
			pos, posTS := u.PositionMs, u.PosTS
			switch {
			case u.Play || pos == 0:
				pos, posTS = 0, 0
			case posTS == 0:
				posTS = u.TS
			}
			argv = append(argv, member(u.Biz, u.ItemID), uint8(u.Biz), u.TS, u.Device, pos, u.DurationMs, posTS)
		}
		return k[:], argv
	})
	if err != nil {
		return nil, fmt.Errorf("history apply %d updates of %d users: %w", len(ups), len(groups), err)
	}
	applied = make([]bool, len(ups))
	stored := make([]Update, len(ups))
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
			// "1,<ts>,<pos>,<dur>,<posts>,<device>"
			f := strings.SplitN(r, ",", 6)
			var errs [4]error
			if len(f) == 6 {
				stored[i].TS, errs[0] = strconv.ParseInt(f[1], 10, 64)
				stored[i].PositionMs, errs[1] = strconv.ParseUint(f[2], 10, 64)
				stored[i].DurationMs, errs[2] = strconv.ParseUint(f[3], 10, 64)
				stored[i].PosTS, errs[3] = strconv.ParseInt(f[4], 10, 64)
				stored[i].Device = f[5]
				stored[i].Cold, stored[i].ColdTrimmed = f[0] != "1", f[0] == "3"
			}
			if len(f) != 6 || errors.Join(errs[:]...) != nil {
				return nil, fmt.Errorf("history apply user %d: bad reply %q", groups[gi].uid, r)
			}
			applied[i] = true
		}
	}
	// mutate only once everything decoded: on error the caller retries the
	// same, untouched slice
	for i, ok := range applied {
		if ok {
			u := &ups[i]
			u.TS, u.PositionMs, u.DurationMs, u.Device = stored[i].TS, stored[i].PositionMs, stored[i].DurationMs, stored[i].Device
			u.PosTS, u.Cold, u.ColdTrimmed = stored[i].PosTS, stored[i].Cold, stored[i].ColdTrimmed
		}
	}
	return applied, nil
}
