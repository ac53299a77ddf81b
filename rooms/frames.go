package rooms

import (
	"context"
	"encoding/json"
	"strconv"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/onair/onair/rooms/wire"
)

// Frames as clients see them (docs/api.md "Live rooms: WebSocket"; their
// types are wire.Type*); push nodes add "seq" to danmaku and gift frames
// (the record's offset in "pushes").

// DanmakuFrame is one danmaku.
type DanmakuFrame struct {
	Type   string `json:"type"`
	RoomID uint64 `json:"room_id"`
	UserID uint64 `json:"user_id"`
	// Nickname is the sender's, when the Board has Names.
	Nickname string `json:"nickname,omitempty"`
	Text     string `json:"text"`
	TS       int64  `json:"ts"`
	ID       string `json:"id"`
	Seq      *int64 `json:"seq,omitempty"`
}

// GiftFrame is one gift effect.
type GiftFrame struct {
	Type     string `json:"type"`
	RoomID   uint64 `json:"room_id"`
	ID       string `json:"id"`
	UserID   uint64 `json:"user_id"`
	Nickname string `json:"nickname,omitempty"` // the sender's, when the Board has Names
	GiftID   uint64 `json:"gift_id"`
	Value    uint64 `json:"value"`
	AnchorID uint64 `json:"anchor_id"`
	TS       int64  `json:"ts"`
}

// Entry is one line of a gift ranking.
type Entry struct {
	UserID   uint64 `json:"user_id"`
	Nickname string `json:"nickname,omitempty"` // when the Board has Names
	Score    uint64 `json:"score"`
}

// nickname is who's nickname, "" without Names.
func (b *Board) nickname(ctx context.Context, who uint64) string {
	if b.cfg.Names == nil {
		return ""
	}
	return b.cfg.Names.Nickname(ctx, who)
}

// nameEntries fills the nicknames of a ranking (one batch lookup).
func (b *Board) nameEntries(ctx context.Context, items []Entry) {
	if b.cfg.Names == nil || len(items) == 0 {
		return
	}
	ids := make([]uint64, len(items))
	for i, e := range items {
		ids[i] = e.UserID
	}
	names := b.cfg.Names.Nicknames(ctx, ids)
	for i := range items {
		items[i].Nickname = names[items[i].UserID]
	}
}

// LeaderboardFrame is a room's gift ranking.
type LeaderboardFrame struct {
	Type    string  `json:"type"`
	RoomID  uint64  `json:"room_id"`
	Version int64   `json:"version"`
	Items   []Entry `json:"items"`
}

// PKFrame is a PK's bar; Winner is the winning room once decided, else 0.
type PKFrame struct {
	Type    string `json:"type"`
	RoomID  uint64 `json:"room_id"`
	Version int64  `json:"version"`
	PKID    string `json:"pk_id"`
	RoomA   uint64 `json:"room_a"`
	RoomB   uint64 `json:"room_b"`
	ScoreA  int64  `json:"score_a"`
	ScoreB  int64  `json:"score_b"`
	Winner  uint64 `json:"winner"`
}

// RoomFrame says a room opened or closed.
type RoomFrame struct {
	Type    string `json:"type"`
	RoomID  uint64 `json:"room_id"`
	Status  string `json:"status"`
	Version int64  `json:"version"`
}

// publish produces one frame keyed by its room and waits for Kafka's
// acknowledgement; it returns the record's offset (the frame's seq).
func (b *Board) publish(ctx context.Context, room uint64, kind string, frame any) (int64, error) {
	v, err := json.Marshal(frame)
	if err != nil {
		return 0, err
	}
	rec := &kgo.Record{Topic: b.cfg.Topic, Key: strconv.AppendUint(nil, room, 10), Value: v}
	if err := b.cfg.Kafka.ProduceSync(ctx, rec).FirstErr(); err != nil {
		b.m.failures.WithLabelValues("publish").Inc()
		b.log.Warn("cannot publish frame", "type", kind, "room", room, "err", err)
		return 0, unavailable("publish "+kind+" frame", err)
	}
	b.m.frames.WithLabelValues(kind).Inc()
	return rec.Offset, nil
}

// publishState stores a state frame (leaderboard, pk) as the room's
// latest in {r<id>}:state, for snapshots, then publishes it without
// waiting: it runs inside the aggregator's write-back, which must not
// stall on the pushes topic. A failed publish is logged and counted; the
// next change publishes the state again, and snapshots have it meanwhile.
func (b *Board) publishState(ctx context.Context, room uint64, field string, frame any) error {
	v, err := json.Marshal(frame)
	if err != nil {
		return err
	}
	if err := b.rdb.HSet(ctx, b.roomKey(room, wire.KindState), field, v).Err(); err != nil {
		b.m.failures.WithLabelValues("redis").Inc()
		b.log.Warn("cannot store state frame", "field", field, "room", room, "err", err)
		return unavailable("store "+field+" state", err)
	}
	rec := &kgo.Record{Topic: b.cfg.Topic, Key: strconv.AppendUint(nil, room, 10), Value: v}
	b.cfg.Kafka.Produce(context.WithoutCancel(ctx), rec, func(_ *kgo.Record, err error) {
		if err != nil {
			b.m.failures.WithLabelValues("publish").Inc()
			b.log.Warn("cannot publish frame", "type", field, "room", room, "err", err)
			return
		}
		b.m.frames.WithLabelValues(field).Inc()
	})
	return nil
}
