package rooms

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"

	"github.com/onair/onair/ingest"
	"github.com/onair/onair/internal/refusal"
	"github.com/onair/onair/rooms/wire"
)

// maxEventID is the longest client event_id, as for POST /v1/events.
const maxEventID = 64

// GiftInput is a gift as posted.
type GiftInput struct {
	GiftID   uint64
	Value    uint64
	AnchorID uint64 // 0 = the room's anchor
	EventID  string // "" = assigned by the server
}

// Danmaku validates a danmaku, takes it to the events topic as an event
// (so onair.events holds it once), then publishes its frame to the room
// and keeps it in the room's recent list. The returned frame carries the
// seq it got. Refusals are *refusal.Error; a nil error means the event is durable.
// If only the publish failed, the event stays accepted and the frame is
// returned without seq (viewers miss it; it is logged and counted).
func (b *Board) Danmaku(ctx context.Context, room uint64, who Caller, text, eventID string) (DanmakuFrame, error) {
	if b.cfg.Events == nil {
		return DanmakuFrame{}, ErrNoProducer
	}
	text = strings.TrimSpace(text)
	switch n := utf8.RuneCountInString(text); {
	case !utf8.ValidString(text):
		return DanmakuFrame{}, b.reject("text_invalid", refusal.Invalidf("text", "is not valid UTF-8"))
	case n == 0:
		return DanmakuFrame{}, b.reject("text_empty", refusal.Invalidf("text", "is required and must not be blank"))
	case n > b.cfg.MaxText:
		return DanmakuFrame{}, b.reject("text_too_long", refusal.Invalidf("text", "has %d characters; at most %d", n, b.cfg.MaxText))
	}
	if err := checkEventID(eventID); err != nil {
		return DanmakuFrame{}, b.reject("event_id_invalid", err)
	}
	if w := b.blocked(ctx, text); w != "" {
		return DanmakuFrame{}, b.reject("blocked_word", refusal.Invalidf("text", "contains a blocked word"))
	}
	if _, err := b.openRoom(ctx, room); err != nil {
		return DanmakuFrame{}, err
	}
	if err := b.allowDanmaku(ctx, room, who.UserID); err != nil {
		return DanmakuFrame{}, err
	}
	ev := ingest.Event{Type: ingest.TypeDanmaku, UserID: who.UserID, RoomID: room, Text: text, TS: b.eventTS(ctx, room, who.UserID, eventID), EventID: eventID}
	if err := b.produce(ctx, &ev); err != nil {
		return DanmakuFrame{}, err
	}
	f := DanmakuFrame{Type: wire.TypeDanmaku, RoomID: room, UserID: who.UserID, Nickname: b.nickname(ctx, who.UserID), Text: text, TS: ev.TS, ID: ev.EventID}
	seq, err := b.publish(ctx, room, wire.TypeDanmaku, f)
	if err != nil {
		return f, nil
	}
	f.Seq = &seq
	v, _ := json.Marshal(f)
	key := b.roomKey(room, wire.KindRecent)
	pipe := b.rdb.TxPipeline()
	pipe.LPush(ctx, key, v)
	pipe.LTrim(ctx, key, 0, wire.RecentDanmaku-1)
	if _, err := pipe.Exec(ctx); err != nil {
		b.m.failures.WithLabelValues("redis").Inc()
		b.log.Warn("danmaku not kept in the recent list", "room", room, "seq", seq, "err", err)
	}
	return f, nil
}

// Gift validates a gift, takes it to the events topic, then publishes its
// effect to the room. The ranking and PK bar count it when the aggregator
// takes it in (ApplyGifts), exactly once. Refusals are *refusal.Error.
func (b *Board) Gift(ctx context.Context, room uint64, who Caller, in GiftInput) (GiftFrame, error) {
	if b.cfg.Events == nil {
		return GiftFrame{}, ErrNoProducer
	}
	switch {
	case in.GiftID == 0:
		return GiftFrame{}, b.reject("gift_invalid", refusal.Invalidf("gift_id", "is required and must be a positive integer"))
	case in.Value == 0 || in.Value > b.cfg.MaxGiftValue:
		return GiftFrame{}, b.reject("gift_invalid", refusal.Invalidf("value", "must be an integer in 1..%d", b.cfg.MaxGiftValue))
	}
	if err := checkEventID(in.EventID); err != nil {
		return GiftFrame{}, b.reject("event_id_invalid", err)
	}
	anchor, err := b.openRoom(ctx, room)
	if err != nil {
		return GiftFrame{}, err
	}
	if in.AnchorID == 0 {
		in.AnchorID = anchor
	} else if in.AnchorID != anchor {
		return GiftFrame{}, b.reject("wrong_anchor", refusal.Invalidf("anchor_id", "room %d's anchor is %d, not %d", room, anchor, in.AnchorID))
	}
	ev := ingest.Event{Type: ingest.TypeGift, UserID: who.UserID, RoomID: room, AnchorID: in.AnchorID,
		GiftID: in.GiftID, Value: in.Value, TS: b.eventTS(ctx, room, who.UserID, in.EventID), EventID: in.EventID}
	if err := b.produce(ctx, &ev); err != nil {
		return GiftFrame{}, err
	}
	f := GiftFrame{Type: wire.TypeGift, RoomID: room, ID: ev.EventID, UserID: who.UserID, Nickname: b.nickname(ctx, who.UserID), GiftID: in.GiftID,
		Value: in.Value, AnchorID: in.AnchorID, TS: ev.TS}
	_, _ = b.publish(ctx, room, wire.TypeGift, f) // logged and counted; the gift itself is accepted
	return f, nil
}

// eventTS is the ts of a new event: the server's clock, except that a
// retry (a client event_id seen before in this room) gets its first
// attempt's ts, so the aggregator's event_id dedupe, which meets copies by
// (user, ts bucket), stores it once. If Redis cannot answer, the clock is
// used (logged, counted).
func (b *Board) eventTS(ctx context.Context, room, user uint64, eventID string) int64 {
	now := b.now().UnixMilli()
	if eventID == "" {
		return now
	}
	key := b.roomKey(room, "ts:"+strconv.FormatUint(user, 10)+":"+eventID)
	first, err := b.rdb.SetArgs(ctx, key, now, redis.SetArgs{Mode: "NX", Get: true, TTL: b.cfg.DedupeWindow}).Result()
	switch {
	case err == redis.Nil:
		return now
	case err != nil:
		b.m.failures.WithLabelValues("redis").Inc()
		b.log.Warn("cannot read a retry's first ts; using the clock", "room", room, "user", user, "event_id", eventID, "err", err)
		return now
	}
	ts, err := strconv.ParseInt(first, 10, 64)
	if err != nil {
		return now
	}
	return ts
}

func checkEventID(id string) *refusal.Error {
	if len(id) > maxEventID {
		return refusal.Invalidf("event_id", "has %d bytes; at most %d", len(id), maxEventID)
	}
	return nil
}

func (b *Board) reject(reason string, e *refusal.Error) *refusal.Error {
	b.m.rejected.WithLabelValues(reason).Inc()
	return e
}

// openRoom returns the anchor of an open room; a room never opened is
// NotFound, a closed one Conflict.
func (b *Board) openRoom(ctx context.Context, room uint64) (anchor uint64, err error) {
	v, err := b.rdb.HMGet(ctx, b.roomKey(room, wire.KindRoom), "status", "anchor_id").Result()
	if err != nil {
		b.m.failures.WithLabelValues("redis").Inc()
		return 0, unavailable("read room", err)
	}
	switch str(v[0]) {
	case "":
		return 0, b.reject("no_room", neverOpened(room))
	case "open":
		return uint64(toInt(v[1])), nil
	}
	return 0, b.reject("room_closed", &refusal.Error{Kind: refusal.Conflict, Field: "room_id", Message: "room " + strconv.FormatUint(room, 10) + " is not open"})
}

// allowDanmaku applies the per-user, per-room danmaku rate (GCRA in Redis,
// keyed inside the room's hash tag). If Redis cannot answer, the danmaku
// is let through and the failure counted: chat must not stop with a cache.
func (b *Board) allowDanmaku(ctx context.Context, room, user uint64) error {
	if b.limiter == nil {
		return nil
	}
	key := b.roomKey(room, "dr:"+strconv.FormatUint(user, 10))
	r := b.cfg.DanmakuRate
	res, err := b.limiter.Allow(ctx, key, redis_rate.Limit{Rate: r, Burst: 3 * r, Period: time.Second})
	if err != nil {
		b.m.failures.WithLabelValues("rate_limit").Inc()
		b.log.Warn("danmaku rate limit unavailable; letting the danmaku through", "room", room, "user", user, "err", err)
		return nil
	}
	if res.Allowed == 0 {
		b.m.rejected.WithLabelValues("danmaku_rate").Inc()
		return &refusal.Error{Kind: refusal.RateLimited, Field: "text", RetryAfterMs: max(res.RetryAfter.Milliseconds(), 1),
			Message: "more than " + strconv.Itoa(r) + " danmaku per second in this room"}
	}
	return nil
}

// produce takes one event to the events topic (the ingest path).
func (b *Board) produce(ctx context.Context, ev *ingest.Event) error {
	evs := []ingest.Event{*ev}
	if err := b.cfg.Events.Produce(ctx, evs); err != nil {
		b.m.failures.WithLabelValues("produce").Inc()
		b.log.Warn("event not acknowledged by Kafka", "type", ev.Type.String(), "room", ev.RoomID, "err", err)
		return unavailable("produce "+ev.Type.String(), err)
	}
	*ev = evs[0]
	b.m.accepted.WithLabelValues(ev.Type.String()).Inc()
	return nil
}
