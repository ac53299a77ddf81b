package rooms

import (
	"context"
	_ "embed"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/onair/onair/internal/refusal"
	"github.com/onair/onair/rooms/wire"
)

//go:embed pk.lua
var pkLua string

var pkScript = redis.NewScript(pkLua)

// claimScript sets a room's PK from ARGV[1] (its current one, empty = none)
// to ARGV[2], only if the room is open (unless ARGV[3] = 'any', used to
// undo a claim). KEYS[1] = {r<id>}:room. Returns 1, 0 (changed meanwhile)
// or -1 (not open).
var claimScript = redis.NewScript(`
local h = redis.call('HMGET', KEYS[1], 'status', 'pk')
if ARGV[3] ~= 'any' and h[1] ~= 'open' then return -1 end
if (h[2] or '') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'pk', ARGV[2])
return 1`)

// pkBarStart is the bar of a new PK in value units: 50:50.
const pkBarStart = 500

// StartPK links two open rooms in a PK. Each room takes part in one PK at
// a time; the caller is an admin or the anchor of either room. The bar
// starts at 50:50; ApplyGifts moves it. A frame goes to both rooms.
func (b *Board) StartPK(ctx context.Context, who Caller, roomA, roomB uint64) (PKFrame, error) {
	switch {
	case roomA == 0:
		return PKFrame{}, b.reject("pk_invalid", refusal.Invalidf("room_a", "is required and must be a positive integer"))
	case roomB == 0:
		return PKFrame{}, b.reject("pk_invalid", refusal.Invalidf("room_b", "is required and must be a positive integer"))
	case roomA == roomB:
		return PKFrame{}, b.reject("pk_invalid", refusal.Invalidf("room_b", "must differ from room_a"))
	}
	rooms := [2]uint64{roomA, roomB}
	fields := [2]string{"room_a", "room_b"}
	var current [2]string
	anchorOf := false
	for i, r := range rooms {
		anchor, err := b.openRoom(ctx, r)
		if e, ok := err.(*refusal.Error); ok {
			e.Field = fields[i]
		}
		if err != nil {
			return PKFrame{}, err
		}
		anchorOf = anchorOf || anchor == who.UserID
		if current[i], err = b.busyPK(ctx, r); err != nil {
			if e, ok := err.(*refusal.Error); ok {
				e.Field = fields[i]
			}
			return PKFrame{}, err
		}
	}
	if !who.Admin && !anchorOf {
		return PKFrame{}, b.reject("not_anchor", &refusal.Error{Kind: refusal.Forbidden, Message: "only an admin or the anchor of one of the rooms may start a PK"})
	}
	now := b.now().UnixMilli()
	id := fmt.Sprintf("%d-%d-%d", roomA, roomB, now)
	key := b.pkKey(id)
	pipe := b.rdb.TxPipeline()
	pipe.HSet(ctx, key, "room_a", roomA, "room_b", roomB, "start", now, "end", now+b.cfg.PKDuration.Milliseconds(),
		"bar", pkBarStart, "winner", 0, "ver", 1)
	pipe.Expire(ctx, key, b.cfg.PKDuration+24*time.Hour)
	if _, err := pipe.Exec(ctx); err != nil {
		b.m.failures.WithLabelValues("redis").Inc()
		return PKFrame{}, unavailable("create pk", err)
	}
	for i, r := range rooms {
		n, err := claimScript.Run(ctx, b.rdb, []string{b.roomKey(r, wire.KindRoom)}, current[i], id, "").Int()
		if err == nil && n == 1 {
			continue
		}
		if i == 1 { // undo the first claim
			_ = claimScript.Run(ctx, b.rdb, []string{b.roomKey(roomA, wire.KindRoom)}, id, current[0], "any").Err()
		}
		b.rdb.Del(ctx, key)
		if err != nil {
			b.m.failures.WithLabelValues("redis").Inc()
			return PKFrame{}, unavailable("claim room for pk", err)
		}
		return PKFrame{}, b.reject("pk_busy", &refusal.Error{Kind: refusal.Conflict, Field: fields[i], Message: "room " + strconv.FormatUint(r, 10) + " closed or joined another PK meanwhile"})
	}
	f := pkFrame(roomA, id, roomA, roomB, 1, pkBarStart, 0)
	b.publishPK(ctx, f)
	return f, nil
}

// busyPK returns the room's PK id (empty = none) if that PK is over, or a
// Conflict refusal while it runs.
func (b *Board) busyPK(ctx context.Context, room uint64) (string, error) {
	id, err := b.rdb.HGet(ctx, b.roomKey(room, wire.KindRoom), "pk").Result()
	if err == redis.Nil || id == "" {
		return "", nil
	}
	if err != nil {
		b.m.failures.WithLabelValues("redis").Inc()
		return "", unavailable("read room", err)
	}
	v, err := b.rdb.HMGet(ctx, b.pkKey(id), "winner", "end").Result()
	if err != nil {
		b.m.failures.WithLabelValues("redis").Inc()
		return "", unavailable("read pk", err)
	}
	if v[0] != nil && str(v[0]) == "0" && b.now().UnixMilli() < toInt(v[1]) {
		return "", b.reject("pk_busy", &refusal.Error{Kind: refusal.Conflict, Message: "room " + strconv.FormatUint(room, 10) + " is in PK " + id})
	}
	return id, nil
}

// PK returns a PK's latest state, as a frame for room_a.
func (b *Board) PK(ctx context.Context, id string) (PKFrame, error) {
	v, err := b.rdb.HMGet(ctx, b.pkKey(id), "room_a", "room_b", "bar", "winner", "ver").Result()
	if err != nil {
		b.m.failures.WithLabelValues("redis").Inc()
		return PKFrame{}, unavailable("read pk", err)
	}
	if v[0] == nil {
		return PKFrame{}, &refusal.Error{Kind: refusal.NotFound, Message: "no PK " + id}
	}
	a, bb := parseRoom(v[0]), parseRoom(v[1])
	return pkFrame(a, id, a, bb, toInt(v[4]), toInt(v[2]), parseRoom(v[3])), nil
}

// applyPKs runs the PK script for each PK touched by a batch (args: room,
// partition, offset, value, append ms per gift) and publishes the bars
// that moved; the winner frame goes out once, when the script decides it.
func (b *Board) applyPKs(ctx context.Context, order []string, args map[string][]any) error {
	calls := make([]scriptCall, len(order))
	for i, id := range order {
		calls[i] = scriptCall{keys: []string{b.pkKey(id)}, args: args[id]}
	}
	res, err := b.runScripts(ctx, pkScript, calls)
	if err != nil {
		return err
	}
	for i, id := range order {
		v := res[i]
		if toInt(v[0]) == 0 || toInt(v[4]) == 0 {
			continue
		}
		a, bb, ok := pkRooms(id)
		if !ok {
			continue
		}
		f := pkFrame(a, id, a, bb, toInt(v[1]), toInt(v[2]), parseRoom(v[3]))
		if toInt(v[5]) == 1 {
			b.log.Info("pk decided", "pk", id, "winner", f.Winner)
		}
		b.publishPK(ctx, f)
	}
	return nil
}

// publishPK stores and publishes f to both rooms of the PK. Failures are
// logged and counted: the state stays in Redis for the next snapshot.
func (b *Board) publishPK(ctx context.Context, f PKFrame) {
	for _, r := range []uint64{f.RoomA, f.RoomB} {
		f.RoomID = r
		_ = b.publishState(ctx, r, wire.TypePK, f)
	}
}

func pkFrame(room uint64, id string, a, bb uint64, ver, bar int64, winner uint64) PKFrame {
	return PKFrame{Type: wire.TypePK, RoomID: room, Version: ver, PKID: id, RoomA: a, RoomB: bb,
		ScoreA: bar / 10, ScoreB: (1000 - bar) / 10, Winner: winner} // bar in tenths; both sides rounded down
}

// pkRooms reads the rooms from a PK id "<room_a>-<room_b>-<start ms>".
func pkRooms(id string) (a, b uint64, ok bool) {
	f := strings.Split(id, "-")
	if len(f) != 3 {
		return 0, 0, false
	}
	a, e1 := strconv.ParseUint(f[0], 10, 64)
	b, e2 := strconv.ParseUint(f[1], 10, 64)
	return a, b, e1 == nil && e2 == nil
}
