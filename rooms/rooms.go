package rooms

import (
	"context"
	_ "embed"
	"errors"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/onair/onair/internal/refusal"
	"github.com/onair/onair/rooms/wire"
)

//go:embed room.lua
var roomLua string

var roomScript = redis.NewScript(roomLua)

// Room is a room's public state.
type Room struct {
	RoomID   uint64 `json:"room_id"`
	Status   string `json:"status"` // "open" or "closed"
	AnchorID uint64 `json:"anchor_id"`
	OpenedAt int64  `json:"opened_at"` // ms; when it last opened
	Online   int64  `json:"online"`    // viewers across push nodes
	PKID     string `json:"pk_id,omitempty"`
	Version  int64  `json:"version"`
}

// Caller is who asks: a user id and whether the token is admin.
type Caller struct {
	UserID uint64
	Admin  bool
}

// SetRoom opens (open = true) or closes a room for caller, publishes a
// room frame when the status changed, and returns the room. The first user
// to open a room becomes its anchor; afterwards only the anchor or an
// admin may open or close it, and an admin opening it with anchor > 0
// names the anchor. Closing a room never opened is NotFound.
func (b *Board) SetRoom(ctx context.Context, room uint64, open bool, who Caller, anchor uint64) (Room, error) {
	op, admin := "close", "0"
	if open {
		op = "open"
	}
	if who.Admin {
		admin = "1"
	}
	now := b.now().UnixMilli()
	res, err := roomScript.Run(ctx, b.rdb, []string{b.roomKey(room, wire.KindRoom)}, op, who.UserID, admin, anchor, now).Slice()
	if err != nil {
		b.m.failures.WithLabelValues("redis").Inc()
		return Room{}, unavailable(op+" room", err)
	}
	switch code := toInt(res[0]); code {
	case -1:
		b.m.rejected.WithLabelValues("not_anchor").Inc()
		return Room{}, &refusal.Error{Kind: refusal.Forbidden, Message: "only the room's anchor or an admin may " + op + " room " + strconv.FormatUint(room, 10)}
	case -2:
		b.m.rejected.WithLabelValues("no_room").Inc()
		return Room{}, neverOpened(room)
	}
	r := Room{RoomID: room, Status: "closed", Version: toInt(res[1]), AnchorID: uint64(toInt(res[2])), OpenedAt: toInt(res[3])}
	if open {
		r.Status = "open"
	}
	// The indexes only help listing; the room hash is the truth (List
	// checks it), so a failure here leaves a stale hint, not a wrong answer.
	pipe := b.rdb.Pipeline()
	pipe.ZAdd(ctx, b.allIndex(), redis.Z{Score: float64(r.OpenedAt), Member: room})
	if open {
		pipe.ZAdd(ctx, b.liveIndex(), redis.Z{Score: float64(r.OpenedAt), Member: room})
	} else {
		pipe.ZRem(ctx, b.liveIndex(), room)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		b.m.failures.WithLabelValues("redis").Inc()
		b.log.Warn("cannot update the room index", "room", room, "err", err)
	}
	if toInt(res[4]) == 1 {
		if _, err := b.publish(ctx, room, wire.TypeRoom, RoomFrame{Type: wire.TypeRoom, RoomID: room, Status: r.Status, Version: r.Version}); err != nil {
			b.log.Warn("room frame not published; viewers see the change on their next snapshot", "room", room, "err", err)
		}
	}
	return r, nil
}

// GetRoom returns a room, or a NotFound refusal if it was never opened.
func (b *Board) GetRoom(ctx context.Context, room uint64) (Room, error) {
	rs, err := b.rooms(ctx, []uint64{room})
	if err != nil {
		return Room{}, err
	}
	if len(rs) == 0 {
		return Room{}, neverOpened(room)
	}
	return rs[0], nil
}

// List returns the open rooms (live) or every room ever opened, newest
// opening first, at most limit.
func (b *Board) List(ctx context.Context, live bool, limit int) ([]Room, error) {
	idx := b.allIndex()
	if live {
		idx = b.liveIndex()
	}
	ids, err := b.rdb.ZRevRange(ctx, idx, 0, int64(limit)-1).Result()
	if err != nil {
		b.m.failures.WithLabelValues("redis").Inc()
		return nil, unavailable("list rooms", err)
	}
	rooms := make([]uint64, 0, len(ids))
	for _, s := range ids {
		if id, err := strconv.ParseUint(s, 10, 64); err == nil {
			rooms = append(rooms, id)
		}
	}
	rs, err := b.rooms(ctx, rooms)
	if err != nil {
		return nil, err
	}
	out := rs[:0]
	for _, r := range rs {
		if !live || r.Status == "open" {
			out = append(out, r)
		}
	}
	return out, nil
}

// rooms reads the given rooms' hashes and head-counts in one pipeline;
// rooms never opened are left out.
func (b *Board) rooms(ctx context.Context, ids []uint64) ([]Room, error) {
	pipe := b.rdb.Pipeline()
	hs := make([]*redis.SliceCmd, len(ids))
	online := make([]*redis.IntCmd, len(ids))
	min := wire.HeadCountMin(b.now().UnixMilli())
	for i, id := range ids {
		hs[i] = pipe.HMGet(ctx, b.roomKey(id, wire.KindRoom), "status", "anchor_id", "opened_at", "ver", "pk")
		online[i] = pipe.ZCount(ctx, b.roomKey(id, wire.KindViewers), min, "+inf")
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		b.m.failures.WithLabelValues("redis").Inc()
		return nil, unavailable("read rooms", err)
	}
	out := make([]Room, 0, len(ids))
	for i, id := range ids {
		v := hs[i].Val()
		if len(v) < 5 || v[0] == nil {
			continue
		}
		r := Room{RoomID: id, Status: str(v[0]), AnchorID: uint64(toInt(v[1])), OpenedAt: toInt(v[2]), Version: toInt(v[3]), PKID: str(v[4])}
		r.Online = online[i].Val()
		out = append(out, r)
	}
	return out, nil
}

// neverOpened is the refusal for a room with no {r<id>}:room hash.
func neverOpened(room uint64) *refusal.Error {
	return refusal.New(refusal.NotFound, "", "room %d was never opened", room)
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

// toInt reads a Lua reply or HMGET value as an integer (0 when absent).
func toInt(v any) int64 {
	switch x := v.(type) {
	case int64:
		return x
	case string:
		n, _ := strconv.ParseInt(x, 10, 64)
		return n
	}
	return 0
}
