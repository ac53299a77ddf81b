package rooms

import (
	"context"
	_ "embed"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/onair/onair/ingest"
	"github.com/onair/onair/rooms/wire"
)

//go:embed gifts.lua
var giftsLua string

var giftsScript = redis.NewScript(giftsLua)

// frameItems is how many ranking lines a leaderboard frame carries.
const frameItems = 10

// ApplyGifts counts gift records into their rooms' rankings and PK bars:
// one script per room (pipelined), each fenced by (partition, offset) so a
// replay after a crash counts nothing twice, then one per PK touched. It
// implements aggregate.RoomSink (checked where cmd/onair wires it); gifts arrive in offset order per
// partition. Changed rankings get a frame within FrameInterval (frameLoop);
// changed PK bars get theirs now.
func (b *Board) ApplyGifts(ctx context.Context, gifts []ingest.Placed) error {
	rooms, byRoom, calls := b.giftCalls(gifts)
	res, err := b.runScripts(ctx, giftsScript, calls)
	if err != nil {
		return err
	}
	// Each gift's PK (if its room is in one and it is not a client retry).
	pkOf := make([]string, len(gifts))
	for i, r := range rooms {
		v := res[i]
		counted := toInt(v[0])
		b.m.gifts.WithLabelValues("counted").Add(float64(counted))
		if counted > 0 {
			b.markDirty(r)
		}
		for j, gi := range byRoom[r] {
			if toInt(v[3+j]) == 0 {
				b.m.gifts.WithLabelValues("retry").Inc()
				continue
			}
			pkOf[gi] = str(v[2])
		}
	}
	// The PK script fences per partition, so its gifts keep the batch's
	// offset order across both rooms.
	pks := map[string][]any{}
	var order []string
	for i := range gifts {
		pk := pkOf[i]
		if pk == "" {
			continue
		}
		if _, ok := pks[pk]; !ok {
			order = append(order, pk)
		}
		g := &gifts[i]
		pks[pk] = append(pks[pk], g.Event.RoomID, g.Partition, g.Offset, g.Event.Value, g.Appended.UnixMilli())
	}
	if len(order) == 0 {
		return nil
	}
	return b.applyPKs(ctx, order, pks)
}

// giftCalls groups gifts by room (rooms in first-seen order, byRoom the
// indexes of each room's gifts) into one gifts.lua call per room.
func (b *Board) giftCalls(gifts []ingest.Placed) (rooms []uint64, byRoom map[uint64][]int, calls []scriptCall) {
	byRoom = map[uint64][]int{}
	for i := range gifts {
		r := gifts[i].Event.RoomID
		if _, ok := byRoom[r]; !ok {
			rooms = append(rooms, r)
		}
		byRoom[r] = append(byRoom[r], i)
	}
	calls = make([]scriptCall, len(rooms))
	for i, r := range rooms {
		args := make([]any, 0, 2+5*len(byRoom[r]))
		args = append(args, b.cfg.DedupeWindow.Milliseconds(), time.Now().UnixMilli())
		for _, gi := range byRoom[r] {
			g := &gifts[gi]
			eid := ""
			if !g.Event.ServerID {
				eid = g.Event.EventID
			}
			args = append(args, g.Partition, g.Offset, g.Event.UserID, g.Event.Value, eid)
		}
		calls[i] = scriptCall{keys: []string{b.roomKey(r, kindLB), b.roomKey(r, kindLBMeta), b.roomKey(r, kindGiftID), b.roomKey(r, wire.KindRoom),
			b.roomKey(r, kindGiftIDOld)}, args: args}
	}
	return rooms, byRoom, calls
}

// claimTTL is how long a room remembers client gift ids, in seconds.
func (b *Board) claimTTL() string {
	return strconv.FormatInt(int64(b.cfg.DedupeWindow/time.Second), 10)
}

// scriptCall is one script invocation of a pipeline.
type scriptCall struct {
	keys []string
	args []any
}

// runScripts runs one script per call in a single pipeline (EVALSHA,
// loading the script once if the server lost it) and returns each reply.
func (b *Board) runScripts(ctx context.Context, s *redis.Script, calls []scriptCall) ([][]any, error) {
	for attempt := 0; ; attempt++ {
		pipe := b.rdb.Pipeline()
		cmds := make([]*redis.Cmd, len(calls))
		for i, c := range calls {
			cmds[i] = s.EvalSha(ctx, pipe, c.keys, c.args...)
		}
		_, err := pipe.Exec(ctx)
		if err != nil && attempt == 0 && redis.HasErrorPrefix(err, "NOSCRIPT") {
			if err := s.Load(ctx, b.rdb).Err(); err != nil {
				b.m.failures.WithLabelValues("redis").Inc()
				return nil, unavailable("load script", err)
			}
			continue
		}
		if err != nil {
			b.m.failures.WithLabelValues("redis").Inc()
			return nil, unavailable("run scripts", err)
		}
		out := make([][]any, len(cmds))
		for i, c := range cmds {
			v, err := c.Slice()
			if err != nil {
				return nil, unavailable("script reply", err)
			}
			out[i] = v
		}
		return out, nil
	}
}

func (b *Board) markDirty(room uint64) {
	b.mu.Lock()
	b.dirty[room] = struct{}{}
	b.mu.Unlock()
}

// Leaderboard returns a room's gift ranking, highest first, at most limit
// lines, and its version.
func (b *Board) Leaderboard(ctx context.Context, room uint64, limit int) ([]Entry, int64, error) {
	pipe := b.rdb.Pipeline()
	zs := pipe.ZRevRangeWithScores(ctx, b.roomKey(room, kindLB), 0, int64(limit)-1)
	ver := pipe.HGet(ctx, b.roomKey(room, kindLBMeta), "ver")
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		b.m.failures.WithLabelValues("redis").Inc()
		return nil, 0, unavailable("read leaderboard", err)
	}
	items := make([]Entry, 0, len(zs.Val()))
	for _, z := range zs.Val() {
		u, _ := strconv.ParseUint(z.Member.(string), 10, 64)
		items = append(items, Entry{UserID: u, Score: uint64(z.Score)})
	}
	b.nameEntries(ctx, items)
	v, _ := ver.Int64()
	return items, v, nil
}

// frameLoop publishes, every FrameInterval, one leaderboard frame per room
// whose ranking changed: the latest state, however many gifts came.
func (b *Board) frameLoop(ctx context.Context) {
	t := time.NewTicker(b.cfg.FrameInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		b.mu.Lock()
		dirty := b.dirty
		b.dirty = map[uint64]struct{}{}
		b.mu.Unlock()
		for room := range dirty {
			if err := b.publishLeaderboard(ctx, room); err != nil && ctx.Err() == nil {
				b.markDirty(room) // try again next tick
			}
		}
	}
}

// publishLeaderboard publishes the room's current ranking, unless another
// aggregate node did within the interval (a per-room turn in Redis, so the
// limit holds across nodes); then the room stays dirty for the next tick.
func (b *Board) publishLeaderboard(ctx context.Context, room uint64) error {
	turn := b.cfg.FrameInterval - b.cfg.FrameInterval/50 // a tick's jitter never skips a turn
	mine, err := b.rdb.SetNX(ctx, b.roomKey(room, "lbt"), 1, turn).Result()
	if err != nil {
		b.m.failures.WithLabelValues("redis").Inc()
		return unavailable("leaderboard frame turn", err)
	}
	if !mine {
		b.markDirty(room)
		return nil
	}
	items, ver, err := b.Leaderboard(ctx, room, frameItems)
	if err != nil {
		return err
	}
	return b.publishState(ctx, room, wire.TypeLeaderboard, LeaderboardFrame{Type: wire.TypeLeaderboard, RoomID: room, Version: ver, Items: items})
}

// parseRoom reads a decimal room id from a Lua reply.
func parseRoom(v any) uint64 {
	n, _ := strconv.ParseUint(strings.TrimSpace(str(v)), 10, 64)
	return n
}
