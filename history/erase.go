package history

import (
	"context"
	"fmt"
	"time"
)

// Erase removes what Redis holds of a user, for POST
// /v1/admin/users/{id}/erase (package lifecycle): every timeline entry,
// resume point, off-timeline index, the pause flag, the day marker and the
// trimmed mark. It first clears the whole history (Clear with biz 0), so
// the user keeps one tombstone, "c:0" at the erasure time, in Redis and in
// ClickHouse's history_ops: an event dated before the erasure that is still
// on its way (in Kafka, in an aggregator's memory, replayed after a crash)
// never brings an item back. The warm mark and the version stay, so a read
// does not re-warm from ClickHouse rows that a pending mutation has yet to
// delete, and a cached page is never served again.
//
// The ClickHouse rows are the caller's: the clear row this writes must be
// inserted after the caller's ALTER TABLE history_ops DELETE mutation was
// submitted, which then leaves it alone. Erase is idempotent.
func (s *Store) Erase(ctx context.Context, userID uint64, now time.Time) error {
	if err := s.Clear(ctx, userID, 0, now); err != nil {
		return fmt.Errorf("history erase user %d: %w", userID, err)
	}
	k := s.keys(userID)
	pipe := s.rdb.TxPipeline() // one hash slot: {uid}
	pipe.Del(ctx, k[0], k[1], k[2])
	pipe.HDel(ctx, k[4], "ps", "day", "x")
	pipe.HIncrBy(ctx, k[4], "v", 1)
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("history erase user %d: %w", userID, err)
	}
	return nil
}
