package rooms

import (
	"context"
	_ "embed"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/onair/onair/ingest"
)

//go:embed rebuild.lua
var rebuildLua string

var rebuildScript = redis.NewScript(rebuildLua)

// RebuildGifts makes the share of parts in every room ranking what it
// would be had Redis lost nothing, then records that parts were rebuilt in
// epoch (Rebuilt reads that record). It implements aggregate.RoomSink's
// rebuild, which the aggregator runs after a Redis loss inside a
// write-back job (so no gift of parts is applied meanwhile).
//
// A user's gifts all come from one partition (the record key is the
// user), so a partition's share is its users' scores. One ClickHouse query
// reads, from one snapshot, each (partition, room, user)'s gift total,
// each partition's resume point W (max(kafka_offset): the highest offset
// onair.events holds) and the client gift ids within the dedupe window.
// Per room, rebuild.lua sets the users' scores to those totals (and
// removes users of parts Redis counted since the loss that ClickHouse
// does not hold: those in counted and pending), claims the ids, and sets
// the fences f<p> to W. Then counted is re-applied through gifts.lua: the
// gifts above W count once more, those at or below are fenced. pending
// follow in the job's ApplyGifts, the same way. Without ClickHouse
// (Config.ClickHouse nil) it logs and rebuilds nothing, but still records
// the epoch: refusing would stop the aggregator's write-back for good, and
// a later owner could not rebuild either.
func (b *Board) RebuildGifts(ctx context.Context, parts []int32, epoch string, counted, pending []ingest.Placed) error {
	if err := b.rebuildGifts(ctx, parts, counted, pending); err != nil {
		return err
	}
	return b.recordRebuilt(ctx, parts, epoch)
}

// rebuildGifts is RebuildGifts without the record.
func (b *Board) rebuildGifts(ctx context.Context, parts []int32, counted, pending []ingest.Placed) error {
	if b.cfg.ClickHouse == nil {
		// Nothing to rebuild from; failing would stop the write-back for good.
		b.m.failures.WithLabelValues("rebuild").Inc()
		b.log.Error("cannot rebuild room rankings after a Redis loss: no ClickHouse configured", "partitions", parts)
		return nil
	}
	snap, err := b.giftSnapshot(ctx, parts)
	if err != nil {
		b.m.failures.WithLabelValues("clickhouse").Inc()
		return unavailable("rebuild rankings", err)
	}
	for _, gs := range [][]ingest.Placed{counted, pending} {
		for _, g := range gs {
			snap.user(g.Event.RoomID, g.Event.UserID)
		}
	}
	fences := make([]any, 0, 1+2*len(parts))
	fences = append(fences, len(parts))
	for _, p := range parts {
		w, ok := snap.upto[p]
		if !ok {
			w = -1
		}
		fences = append(fences, p, w)
	}
	calls := make([]scriptCall, 0, len(snap.rooms))
	for room, rs := range snap.rooms {
		args := append([]any{b.claimTTL()}, fences...)
		args = append(args, len(rs.score))
		for u, v := range rs.score {
			args = append(args, u, v)
		}
		for _, c := range rs.claims {
			args = append(args, c)
		}
		calls = append(calls, scriptCall{keys: []string{b.roomKey(room, kindLB), b.roomKey(room, kindLBMeta), b.roomKey(room, kindGiftID)}, args: args})
	}
	if _, err := b.runScripts(ctx, rebuildScript, calls); err != nil {
		return err
	}
	if len(counted) > 0 {
		_, _, again := b.giftCalls(counted)
		if _, err := b.runScripts(ctx, giftsScript, again); err != nil {
			return err
		}
	}
	for room := range snap.rooms {
		b.markDirty(room)
	}
	b.m.rebuilds.Inc()
	b.log.Warn("rebuilt room rankings after a Redis loss", "partitions", parts, "rooms", len(snap.rooms),
		"resume_points", snap.upto, "reapplied", len(counted))
	return nil
}

// rebuiltKey names a hash: partition → the Redis epoch token in which its
// share of the rankings was last rebuilt. It is not hash-tagged: like the
// epoch key it names the whole Redis, not a room.
func (b *Board) rebuiltKey() string { return b.cfg.Prefix + "rooms:rebuilt" }

// recordRebuilt records that parts were rebuilt in epoch.
func (b *Board) recordRebuilt(ctx context.Context, parts []int32, epoch string) error {
	fields := make([]any, 0, 2*len(parts))
	for _, p := range parts {
		fields = append(fields, strconv.Itoa(int(p)), epoch)
	}
	if err := b.rdb.HSet(ctx, b.rebuiltKey(), fields...).Err(); err != nil {
		b.m.failures.WithLabelValues("redis").Inc()
		return unavailable("record rebuilt partitions", err)
	}
	return nil
}

// Rebuilt returns, per partition, the Redis epoch token in which its share
// of the rankings was last rebuilt (RebuildGifts); a partition never
// rebuilt is absent. It implements aggregate.RoomSink's record, which an
// aggregator that did not see a loss reads to leave alone the partitions
// another owner already rebuilt in this epoch.
func (b *Board) Rebuilt(ctx context.Context) (map[int32]string, error) {
	h, err := b.rdb.HGetAll(ctx, b.rebuiltKey()).Result()
	if err != nil {
		b.m.failures.WithLabelValues("redis").Inc()
		return nil, unavailable("read rebuilt partitions", err)
	}
	out := make(map[int32]string, len(h))
	for f, epoch := range h {
		if p, err := strconv.ParseInt(f, 10, 32); err == nil {
			out[int32(p)] = epoch
		}
	}
	return out, nil
}

// giftSnapshot is what ClickHouse holds of some partitions' gifts, read in
// one query (one set of data parts: an INSERT block is in it whole or not).
type giftSnapshot struct {
	upto  map[int32]int64 // partition → max(kafka_offset)
	rooms map[uint64]*roomShare
}

// roomShare is one room's users (of the snapshot's partitions) and claims.
type roomShare struct {
	score  map[uint64]uint64
	claims []string
}

// user returns room's share, adding user with score 0 if absent.
func (s *giftSnapshot) user(room, user uint64) *roomShare {
	rs := s.rooms[room]
	if rs == nil {
		rs = &roomShare{score: map[uint64]uint64{}}
		s.rooms[room] = rs
	}
	if _, ok := rs.score[user]; !ok {
		rs.score[user] = 0
	}
	return rs
}

// giftSnapshot reads the snapshot. Rows with kafka_offset > 0 (one per
// partition per INSERT block, whatever their type) give the resume point;
// gift rows the totals; client ids ingested within the dedupe window
// (plus a minute of clock skew) the claims.
func (b *Board) giftSnapshot(ctx context.Context, parts []int32) (*giftSnapshot, error) {
	ids := make([]string, len(parts))
	for i, p := range parts {
		ids[i] = strconv.Itoa(int(p))
	}
	since := b.now().Add(-b.cfg.DedupeWindow - time.Minute).Unix()
	q := fmt.Sprintf(`SELECT kafka_partition, room_id, user_id, sumIf(value, type = 'gift'), countIf(type = 'gift'),
	max(kafka_offset), groupArrayIf(event_id, type = 'gift' AND event_id != '' AND ingested_at >= toDateTime(%d))
FROM %s.events
WHERE kafka_partition IN (%s) AND (type = 'gift' OR kafka_offset > 0)
GROUP BY kafka_partition, room_id, user_id`, since, b.cfg.Database, strings.Join(ids, ","))
	rows, err := b.cfg.ClickHouse.Query(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("cannot read gift totals of partitions %v: %w", parts, err)
	}
	defer rows.Close()
	s := &giftSnapshot{upto: map[int32]int64{}, rooms: map[uint64]*roomShare{}}
	for rows.Next() {
		var p uint32
		var room, user, value, n, off uint64
		var eids []string
		if err := rows.Scan(&p, &room, &user, &value, &n, &off, &eids); err != nil {
			return nil, err
		}
		if cur, ok := s.upto[int32(p)]; !ok || int64(off) > cur {
			s.upto[int32(p)] = int64(off)
		}
		if n == 0 {
			continue
		}
		rs := s.user(room, user)
		rs.score[user] += value
		for _, e := range eids {
			rs.claims = append(rs.claims, strconv.FormatUint(user, 10)+":"+e)
		}
	}
	return s, rows.Err()
}
