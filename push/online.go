package push

import (
	"context"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/onair/onair/rooms/wire"
)

// onlineCounter keeps a room's head-count across nodes as a merged counter
// (not a member list): wire.KindOnline is a hash node id → this node's
// viewer count, wire.KindOnlineSeen node id → when that count expires
// (unix ms). Every node refreshes its own fields each OnlineInterval, in
// one script that also drops the fields of nodes that stopped refreshing
// and returns what is left; the sum is wire.HeadCount, the rule rooms
// reads GET /v1/rooms' online with. Both keys carry the room's hash tag.
type onlineCounter struct {
	rdb    redis.UniversalClient
	prefix string
	node   string
	ttl    time.Duration
}

func newOnlineCounter(rdb redis.UniversalClient, prefix, node string, ttl time.Duration) *onlineCounter {
	return &onlineCounter{rdb: rdb, prefix: prefix, node: node, ttl: ttl}
}

// onlineScript: KEYS = counts, seen; ARGV = node, count, now ms, ttl ms.
// It sets (count > 0) or removes this node's fields, drops the nodes whose
// expiry passed (wire.HeadCount would not count them), keeps both keys
// while a live node is left, and returns {counts, seen} as HGETALL does.
var onlineScript = redis.NewScript(`
local now, ttl = tonumber(ARGV[3]), tonumber(ARGV[4])
if tonumber(ARGV[2]) > 0 then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  redis.call('HSET', KEYS[2], ARGV[1], now + ttl)
else
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('HDEL', KEYS[2], ARGV[1])
end
local seen = redis.call('HGETALL', KEYS[2])
local live = false
for i = 1, #seen, 2 do
  if tonumber(seen[i+1]) < now then
    redis.call('HDEL', KEYS[1], seen[i])
    redis.call('HDEL', KEYS[2], seen[i])
  else
    live = true
  end
end
if live then
  redis.call('PEXPIRE', KEYS[1], ttl)
  redis.call('PEXPIRE', KEYS[2], ttl)
end
return {redis.call('HGETALL', KEYS[1]), redis.call('HGETALL', KEYS[2])}
`)

func (o *onlineCounter) keys(room uint64) []string {
	return []string{wire.Key(o.prefix, room, wire.KindOnline), wire.Key(o.prefix, room, wire.KindOnlineSeen)}
}

// report sets this node's counts for the rooms (one pipeline) and returns
// each room's merged head-count.
func (o *onlineCounter) report(ctx context.Context, rooms []uint64, counts []int) ([]int64, error) {
	nowMs := time.Now().UnixMilli()
	now := strconv.FormatInt(nowMs, 10)
	ttl := strconv.FormatInt(o.ttl.Milliseconds(), 10)
	cmds := make([]*redis.Cmd, len(rooms))
	_, err := o.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range rooms {
			cmds[i] = onlineScript.Eval(ctx, p, o.keys(id), o.node, counts[i], now, ttl) // EVALSHA cannot fall back inside a pipeline
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]int64, len(rooms))
	for i, c := range cmds {
		v, _ := c.Slice()
		if len(v) == 2 {
			out[i] = wire.HeadCount(pairs(v[0]), pairs(v[1]), nowMs)
		}
	}
	return out, nil
}

// pairs reads a script's HGETALL reply (field, value, ...) as a map.
func pairs(v any) map[string]string {
	l, _ := v.([]any)
	m := make(map[string]string, len(l)/2)
	for i := 0; i+1 < len(l); i += 2 {
		k, _ := l[i].(string)
		m[k], _ = l[i+1].(string)
	}
	return m
}

// clear removes this node's counts of the rooms.
func (o *onlineCounter) clear(ctx context.Context, rooms []uint64) error {
	if len(rooms) == 0 {
		return nil
	}
	_, err := o.report(ctx, rooms, make([]int, len(rooms)))
	return err
}

// onlineLoop merges and pushes the head-count of every room with viewers
// on this node each OnlineInterval.
func (g *Gateway) onlineLoop(ctx context.Context) {
	t := time.NewTicker(g.cfg.OnlineInterval)
	defer t.Stop()
	var rooms []*room
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rooms = g.hub.all(rooms[:0])
		if len(rooms) == 0 {
			continue
		}
		ids := make([]uint64, len(rooms))
		counts := make([]int, len(rooms))
		for i, r := range rooms {
			ids[i], counts[i] = r.id, r.viewers()
		}
		rctx, cancel := context.WithTimeout(ctx, g.cfg.OnlineInterval)
		totals, err := g.online.report(rctx, ids, counts)
		cancel()
		if err != nil {
			g.m.errors.WithLabelValues("online").Inc()
			g.log.Warn("push: cannot merge head-counts", "rooms", len(ids), "err", err)
			continue
		}
		version := time.Now().UnixMilli()
		for i, r := range rooms {
			r.add(onlineFrame(r.id, version, totals[i]))
		}
		clear(rooms)
	}
}
