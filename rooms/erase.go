package rooms

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/onair/onair/rooms/wire"
)

// EraseUser removes a user from the given rooms, for the erasure of a user
// (package lifecycle, which finds the rooms in ClickHouse: the rooms the
// user gave gifts or sent danmaku in): the user's line of each room's gift
// ranking and the user's danmaku frames from its recent list (what a
// joining viewer's snapshot shows). When the ranking had the user, it
// advances the ranking's version and publishes the new ranking at once
// (state frame and "pushes"), outside the once-a-second turn: an erasure is
// rare, and a viewer must not keep seeing the user until the next gift.
// Idempotent; each room is one hash slot, {r<id>}.
func (b *Board) EraseUser(ctx context.Context, user uint64, rooms []uint64) error {
	member := strconv.FormatUint(user, 10)
	var errs []error
	for _, room := range rooms {
		if err := b.eraseInRoom(ctx, user, member, room); err != nil {
			b.m.failures.WithLabelValues("redis").Inc()
			errs = append(errs, unavailable("erase user "+member+" in room "+strconv.FormatUint(room, 10), err))
		}
	}
	return errors.Join(errs...)
}

func (b *Board) eraseInRoom(ctx context.Context, user uint64, member string, room uint64) error {
	recentKey := b.roomKey(room, wire.KindRecent)
	recent, err := b.rdb.LRange(ctx, recentKey, 0, -1).Result()
	if err != nil {
		return err
	}
	pipe := b.rdb.TxPipeline()
	removed := pipe.ZRem(ctx, b.roomKey(room, kindLB), member)
	for _, v := range recent {
		var f struct {
			UserID uint64 `json:"user_id"`
		}
		if json.Unmarshal([]byte(v), &f) == nil && f.UserID == user {
			pipe.LRem(ctx, recentKey, 0, v)
		}
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return err
	}
	if removed.Val() == 0 {
		return nil
	}
	if err := b.rdb.HIncrBy(ctx, b.roomKey(room, kindLBMeta), "ver", 1).Err(); err != nil {
		return err
	}
	items, ver, err := b.Leaderboard(ctx, room, frameItems)
	if err != nil {
		return err
	}
	return b.publishState(ctx, room, wire.TypeLeaderboard, LeaderboardFrame{Type: wire.TypeLeaderboard, RoomID: room, Version: ver, Items: items})
}
