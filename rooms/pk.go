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

// PKState is a PK as the registry (PostgreSQL) holds it once accepted.
type PKState struct {
	ID           string // PKID(room_a, room_b, invited ms)
	RoomA, RoomB uint64
	Start, End   int64 // ms: the bar moves for gifts appended in [Start, End)
}

// PKID names a PK: "<room_a>-<room_b>-<ms>" (applyPKs reads the rooms
// back from it).
func PKID(roomA, roomB uint64, ms int64) string {
	return fmt.Sprintf("%d-%d-%d", roomA, roomB, ms)
}

// StartPK links two open rooms in a PK the registry accepted: the bar
// starts at 50:50 and ApplyGifts moves it; a frame goes to both rooms.
// Each room takes part in one PK at a time (Conflict naming room_a or
// room_b otherwise). Who may start it is the registry's rule.
func (b *Board) StartPK(ctx context.Context, pk PKState) (PKFrame, error) {
	switch {
	case pk.RoomA == 0:
		return PKFrame{}, b.reject("pk_invalid", refusal.Invalidf("room_a", "is required and must be a positive integer"))
	case pk.RoomB == 0:
		return PKFrame{}, b.reject("pk_invalid", refusal.Invalidf("room_b", "is required and must be a positive integer"))
	case pk.RoomA == pk.RoomB:
		return PKFrame{}, b.reject("pk_invalid", refusal.Invalidf("room_b", "must differ from room_a"))
	}
	rooms := [2]uint64{pk.RoomA, pk.RoomB}
	fields := [2]string{"room_a", "room_b"}
	var current [2]string
	for i, r := range rooms {
		_, err := b.openRoom(ctx, r)
		if err == nil {
			current[i], err = b.busyPK(ctx, r)
		}
		if e, ok := err.(*refusal.Error); ok {
			e.Field = fields[i]
		}
		if err != nil {
			return PKFrame{}, err
		}
	}
	key := b.pkKey(pk.ID)
	if err := b.writePK(ctx, pk); err != nil {
		return PKFrame{}, err
	}
	for i, r := range rooms {
		n, err := claimScript.Run(ctx, b.rdb, []string{b.roomKey(r, wire.KindRoom)}, current[i], pk.ID, "").Int()
		if err == nil && n == 1 {
			continue
		}
		if i == 1 { // undo the first claim
			_ = claimScript.Run(ctx, b.rdb, []string{b.roomKey(pk.RoomA, wire.KindRoom)}, pk.ID, current[0], "any").Err()
		}
		b.rdb.Del(ctx, key)
		if err != nil {
			b.m.failures.WithLabelValues("redis").Inc()
			return PKFrame{}, unavailable("claim room for pk", err)
		}
		return PKFrame{}, b.reject("pk_busy", &refusal.Error{Kind: refusal.Conflict, Field: fields[i], Message: "room " + strconv.FormatUint(r, 10) + " closed or joined another PK meanwhile"})
	}
	f := pkFrame(pk.RoomA, pk.ID, pk.RoomA, pk.RoomB, 1, pkBarStart, 0)
	b.publishPK(ctx, f)
	return f, nil
}

// writePK creates a PK's live bar at 50:50.
func (b *Board) writePK(ctx context.Context, pk PKState) error {
	key := b.pkKey(pk.ID)
	pipe := b.rdb.TxPipeline()
	pipe.HSet(ctx, key, "room_a", pk.RoomA, "room_b", pk.RoomB, "start", pk.Start, "end", pk.End,
		"bar", pkBarStart, "winner", 0, "ver", 1)
	pipe.ExpireAt(ctx, key, time.UnixMilli(pk.End).Add(24*time.Hour))
	if _, err := pipe.Exec(ctx); err != nil {
		b.m.failures.WithLabelValues("redis").Inc()
		return unavailable("create pk", err)
	}
	return nil
}

// restorePKScript creates a PK hash only when it is missing (a Redis loss
// took it). KEYS[1] = {pk<id>}:pk; ARGV: room_a, room_b, start, end, bar,
// expiry (unix s). Returns 1 when it created it.
var restorePKScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'room_a', ARGV[1], 'room_b', ARGV[2], 'start', ARGV[3], 'end', ARGV[4], 'bar', ARGV[5], 'winner', '0', 'ver', 1)
redis.call('EXPIREAT', KEYS[1], ARGV[6])
return 1`)

// RestorePK puts a running PK back after a Redis loss: its bar (at 50:50
// when Redis lost it: the bar lives only in Redis) and both rooms' links
// to it. A PK Redis still holds is left alone.
func (b *Board) RestorePK(ctx context.Context, pk PKState) error {
	_, err := restorePKScript.Run(ctx, b.rdb, []string{b.pkKey(pk.ID)}, pk.RoomA, pk.RoomB, pk.Start, pk.End, pkBarStart,
		time.UnixMilli(pk.End).Add(24*time.Hour).Unix()).Result()
	for _, r := range []uint64{pk.RoomA, pk.RoomB} {
		if err != nil {
			break
		}
		err = b.rdb.HSet(ctx, b.roomKey(r, wire.KindRoom), "pk", pk.ID).Err()
	}
	if err != nil {
		b.m.failures.WithLabelValues("redis").Inc()
		return unavailable("restore pk", err)
	}
	return nil
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
