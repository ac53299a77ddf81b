package rooms

import (
	"cmp"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/onair/onair/internal/refusal"
	"github.com/onair/onair/rooms/wire"
)

//go:embed room.lua
var roomLua string

var roomScript = redis.NewScript(roomLua)

// Room is a room's public state as the hot copy holds it.
type Room struct {
	RoomID   uint64 `json:"room_id"`
	Status   string `json:"status"` // "open" or "closed"
	AnchorID uint64 `json:"anchor_id"`
	Title    string `json:"title"`
	Category string `json:"category"`
	CoverURL string `json:"cover_url"`
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

// RoomState is a room as the registry (PostgreSQL) holds it: what PutRoom
// copies into Redis. Ver is one more per status change.
type RoomState struct {
	RoomID   uint64
	Open     bool
	AnchorID uint64
	OpenedAt int64 // ms
	Ver      int64
	Title    string
	Category string
	CoverURL string
}

func (s RoomState) status() string {
	if s.Open {
		return "open"
	}
	return "closed"
}

// frameMode says whether putRoom announces a status change to the room.
type frameMode bool

const (
	announce frameMode = true  // a change a caller made: viewers get a room frame
	quietly  frameMode = false // a rebuild of what Redis lost: nothing changed for viewers
)

// PutRoom writes a room's hot copy (the registry calls it after each
// change it committed to PostgreSQL), publishes a room frame when the
// status changed, and returns the room as Redis now holds it. A write
// older than the hash (a lower Ver) changes nothing. Only the registry
// writes room hashes, so the anchor rule that Danmaku, Gift and push read
// from Redis is the registry's.
func (b *Board) PutRoom(ctx context.Context, s RoomState) (Room, error) {
	return b.putRoom(ctx, s, announce)
}

func (b *Board) putRoom(ctx context.Context, s RoomState, mode frameMode) (Room, error) {
	res, err := roomScript.Run(ctx, b.rdb, []string{b.roomKey(s.RoomID, wire.KindRoom)},
		s.status(), s.AnchorID, s.OpenedAt, s.Ver, s.Title, s.Category, s.CoverURL).Slice()
	if err != nil {
		b.m.failures.WithLabelValues("redis").Inc()
		return Room{}, unavailable("write room", err)
	}
	r := Room{RoomID: s.RoomID, Version: toInt(res[0]), Status: str(res[1]), AnchorID: uint64(toInt(res[2])), OpenedAt: toInt(res[3]),
		Title: s.Title, Category: s.Category, CoverURL: s.CoverURL}
	// The index only helps listing; the room hash is the truth (LiveRooms
	// checks it), so a failure here leaves a stale hint, not a wrong answer.
	var ierr error
	if r.Status == "open" {
		ierr = b.rdb.ZAdd(ctx, b.liveIndex(), redis.Z{Score: float64(r.OpenedAt), Member: s.RoomID}).Err()
	} else {
		ierr = b.rdb.ZRem(ctx, b.liveIndex(), s.RoomID).Err()
	}
	if ierr != nil {
		b.m.failures.WithLabelValues("redis").Inc()
		b.log.Warn("cannot update the live room index", "room", s.RoomID, "err", ierr)
	}
	if toInt(res[4]) == 1 && mode == announce {
		if _, err := b.publish(ctx, s.RoomID, wire.TypeRoom, RoomFrame{Type: wire.TypeRoom, RoomID: s.RoomID, Status: r.Status, Version: r.Version}); err != nil {
			b.log.Warn("room frame not published; viewers see the change on their next snapshot", "room", s.RoomID, "err", err)
		}
	}
	return r, nil
}

// GetRoom returns a room's hot copy, or a NotFound refusal if Redis holds
// none (the registry reads PostgreSQL then).
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

// LiveCursor is where a page of live rooms ends: the last room's opening
// time and id (rooms are listed newest opening first, then highest id).
type LiveCursor struct {
	OpenedAt int64
	RoomID   uint64
}

// liveTies bounds how many rooms opened in the same millisecond as a
// cursor's are skipped past in one read; more are read again.
const liveTies = 64

// LiveRooms returns open rooms after cursor (nil = from the newest), newest
// opening first, at most limit, and the cursor of the next page (nil at
// the end).
func (b *Board) LiveRooms(ctx context.Context, after *LiveCursor, limit int) ([]Room, *LiveCursor, error) {
	max := "+inf"
	if after != nil {
		max = strconv.FormatInt(after.OpenedAt, 10)
	}
	var ids []uint64
	var offset int64
	for len(ids) < limit {
		zs, err := b.rdb.ZRevRangeByScoreWithScores(ctx, b.liveIndex(), &redis.ZRangeBy{Max: max, Min: "-inf", Offset: offset, Count: int64(limit + liveTies)}).Result()
		if err != nil {
			b.m.failures.WithLabelValues("redis").Inc()
			return nil, nil, unavailable("list rooms", err)
		}
		for _, z := range zs {
			id, err := strconv.ParseUint(fmt.Sprint(z.Member), 10, 64)
			if err != nil {
				continue
			}
			// the same millisecond as the cursor: only ids below it are new
			if after != nil && int64(z.Score) == after.OpenedAt && id >= after.RoomID {
				continue
			}
			ids = append(ids, id)
		}
		if len(zs) < limit+liveTies {
			break
		}
		offset += int64(len(zs))
	}
	rs, err := b.rooms(ctx, ids)
	if err != nil {
		return nil, nil, err
	}
	out := rs[:0]
	for _, r := range rs {
		if r.Status == "open" {
			out = append(out, r)
		}
	}
	// ties in one millisecond come in member order; sort them by id, newest first
	slices.SortStableFunc(out, func(x, y Room) int {
		if c := cmp.Compare(y.OpenedAt, x.OpenedAt); c != 0 {
			return c
		}
		return cmp.Compare(y.RoomID, x.RoomID)
	})
	if len(out) <= limit {
		return out, nil, nil
	}
	out = out[:limit]
	last := out[limit-1]
	return out, &LiveCursor{OpenedAt: last.OpenedAt, RoomID: last.RoomID}, nil
}

// rooms reads the given rooms' hashes and head-counts in one pipeline;
// rooms never opened are left out.
func (b *Board) rooms(ctx context.Context, ids []uint64) ([]Room, error) {
	pipe := b.rdb.Pipeline()
	hs := make([]*redis.SliceCmd, len(ids))
	online := make([]*redis.IntCmd, len(ids))
	min := wire.HeadCountMin(b.now().UnixMilli())
	for i, id := range ids {
		hs[i] = pipe.HMGet(ctx, b.roomKey(id, wire.KindRoom), "status", "anchor_id", "opened_at", "ver", "pk", "title", "category", "cover")
		online[i] = pipe.ZCount(ctx, b.roomKey(id, wire.KindViewers), min, "+inf")
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		b.m.failures.WithLabelValues("redis").Inc()
		return nil, unavailable("read rooms", err)
	}
	out := make([]Room, 0, len(ids))
	for i, id := range ids {
		v := hs[i].Val()
		if len(v) < 8 || v[0] == nil {
			continue
		}
		r := Room{RoomID: id, Status: str(v[0]), AnchorID: uint64(toInt(v[1])), OpenedAt: toInt(v[2]), Version: toInt(v[3]), PKID: str(v[4]),
			Title: str(v[5]), Category: str(v[6]), CoverURL: str(v[7])}
		r.Online = online[i].Val()
		out = append(out, r)
	}
	return out, nil
}

// neverOpened is the refusal for a room with no {r<id>}:room hash: no
// such room (the registry writes the hash when it creates one).
func neverOpened(room uint64) *refusal.Error {
	return refusal.New(refusal.NotFound, "", "no room %d", room)
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
