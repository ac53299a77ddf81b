package history

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/onair/onair/ingest"
)

// Operation names: ClickHouse's history_ops.op enum and ops.lua's op
// argument, one vocabulary.
const (
	opDelete = "delete"
	opClear  = "clear"
	opPause  = "pause"
	opResume = "resume"
	opHide   = "hide"
)

// runOp runs ops.lua and returns its reply: the operation's effective time.
func (s *Store) runOp(ctx context.Context, userID uint64, op string, now time.Time, args ...any) (string, error) {
	k := s.keys(userID)
	argv := make([]any, 0, 3+len(args))
	argv = append(argv, op, now.UnixMilli())
	argv = append(argv, args...)
	argv = append(argv, TombstoneTTL.Milliseconds())
	return opsScript.Run(ctx, s.rdb, k[:], argv...).Text()
}

// record writes the operation durably to ClickHouse's history_ops, after
// Redis: a failure is returned to the caller, whose retry is idempotent.
func (s *Store) record(ctx context.Context, userID uint64, op string, biz ingest.Biz, item uint64, tsMs string) error {
	if s.ch == nil {
		return nil
	}
	ts, err := strconv.ParseUint(tsMs, 10, 64)
	if err != nil {
		return fmt.Errorf("history %s user %d: bad op time %q", op, userID, tsMs)
	}
	// a batch, not Exec("INSERT ... VALUES (?)"): ClickHouse 18.16 makes
	// the latter wait for data blocks the client never sends
	b, err := s.ch.PrepareBatch(ctx, "INSERT INTO "+s.db+".history_ops (user_id, op, biz, item_id, ts_ms)")
	if err == nil {
		err = b.Append(userID, op, bizName(biz), item, ts)
		if err == nil {
			err = b.Send()
		} else {
			_ = b.Abort()
		}
	}
	if err != nil {
		return fmt.Errorf("history %s user %d: cannot record in ClickHouse: %w", op, userID, err)
	}
	return nil
}

func bizName(b ingest.Biz) string {
	if b == 0 {
		return ""
	}
	return b.String()
}

// Delete removes one item from the user's history and progress. Any report
// with ts <= the delete time is ignored from now on; a newer one brings the
// item back. The delete time is max(now, the stored report's ts), so a
// report dated slightly in the future cannot outlive the delete.
func (s *Store) Delete(ctx context.Context, userID uint64, biz ingest.Biz, itemID uint64, now time.Time) error {
	if err := checkBiz(biz, false); err != nil {
		return err
	}
	if itemID == 0 {
		return ErrBadItem
	}
	ts, err := s.runOp(ctx, userID, opDelete, now, member(biz, itemID))
	if err != nil {
		return fmt.Errorf("history delete user %d item %d:%d: %w", userID, biz, itemID, err)
	}
	return s.record(ctx, userID, opDelete, biz, itemID, ts)
}

// Clear removes every item of biz (0 = all business lines). Reports with
// ts <= the clear time are ignored from now on, newer ones start afresh.
// The clear time is max(now, the newest cleared report's ts).
func (s *Store) Clear(ctx context.Context, userID uint64, biz ingest.Biz, now time.Time) error {
	if err := checkBiz(biz, true); err != nil {
		return err
	}
	pre := ""
	if biz != 0 {
		pre = strconv.Itoa(int(biz)) + ":"
	}
	ts, err := s.runOp(ctx, userID, opClear, now, pre, "c:"+strconv.Itoa(int(biz)))
	if err != nil {
		return fmt.Errorf("history clear user %d biz %d: %w", userID, biz, err)
	}
	return s.record(ctx, userID, opClear, biz, 0, ts)
}

// Hide takes an item off the user's continue row until its position (or
// duration) next changes. Hiding an item with no stored progress does nothing.
func (s *Store) Hide(ctx context.Context, userID uint64, biz ingest.Biz, itemID uint64, now time.Time) error {
	if err := checkBiz(biz, false); err != nil {
		return err
	}
	if itemID == 0 {
		return ErrBadItem
	}
	if err := s.ensureWarm(ctx, userID); err != nil {
		return err
	}
	ts, err := s.runOp(ctx, userID, opHide, now, member(biz, itemID))
	if err != nil {
		return fmt.Errorf("history hide user %d item %d:%d: %w", userID, biz, itemID, err)
	}
	if ts == "" {
		return nil
	}
	return s.record(ctx, userID, opHide, biz, itemID, ts)
}

// SetPaused pauses or resumes the user's history. While paused, reports
// with ts >= the pause time keep resume positions but neither add items to
// the timeline nor move them. Pausing twice keeps the first pause time.
func (s *Store) SetPaused(ctx context.Context, userID uint64, paused bool, now time.Time) error {
	op := opResume
	if paused {
		op = opPause
	}
	// warm first, so a re-warm cannot later overwrite this with an older state
	if err := s.ensureWarm(ctx, userID); err != nil {
		return err
	}
	ts, err := s.runOp(ctx, userID, op, now)
	if err != nil {
		return fmt.Errorf("history %s user %d: %w", op, userID, err)
	}
	// nodes that keep the flag (WatchPauses) forget it now; if this fails
	// the caller retries, which keeps the first pause time
	if err := s.rdb.Publish(ctx, s.pauseChannel(), userID).Err(); err != nil {
		return fmt.Errorf("history %s user %d: cannot announce it to other nodes: %w", op, userID, err)
	}
	return s.record(ctx, userID, op, 0, 0, ts)
}

// Paused reports whether the user's history is paused.
func (s *Store) Paused(ctx context.Context, userID uint64) (bool, error) {
	k := s.keys(userID)
	for attempt := 0; ; attempt++ {
		r, err := s.rdb.HMGet(ctx, k[4], "w", "ps").Result()
		if err != nil {
			return false, fmt.Errorf("history paused user %d: %w", userID, err)
		}
		if r[0] == nil && s.ch != nil && attempt == 0 {
			if err := s.warm(ctx, userID); err != nil {
				return false, err
			}
			continue
		}
		return r[1] != nil, nil
	}
}
