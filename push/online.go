package push

import (
	"context"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// onlineCounter keeps a room's head-count across nodes as a merged counter
// (not a member list): {r<id>}:online is a hash node id → this node's
// viewer count, {r<id>}:online:seen node id → when that count expires
// (unix ms). Every node refreshes its own field each OnlineInterval and
// reads the sum in the same script, which also drops the fields of nodes
// that stopped refreshing. Both keys carry the room's hash tag.
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
// It sets (count > 0) or removes this node's field, drops expired nodes
// and returns the sum of the rest.
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
local total = 0
for i = 1, #seen, 2 do
  if tonumber(seen[i+1]) < now then
    redis.call('HDEL', KEYS[1], seen[i])
    redis.call('HDEL', KEYS[2], seen[i])
  else
    total = total + (tonumber(redis.call('HGET', KEYS[1], seen[i])) or 0)
  end
end
if total > 0 then
  redis.call('PEXPIRE', KEYS[1], ttl)
  redis.call('PEXPIRE', KEYS[2], ttl)
end
return total
`)

func (o *onlineCounter) keys(room uint64) []string {
	k := roomKey(o.prefix, room, "online")
	return []string{k, k + ":seen"}
}

// report sets this node's counts for the rooms (one pipeline) and returns
// each room's merged head-count.
func (o *onlineCounter) report(ctx context.Context, rooms []uint64, counts []int) ([]int64, error) {
	now := strconv.FormatInt(time.Now().UnixMilli(), 10)
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
		out[i], _ = c.Int64()
	}
	return out, nil
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
