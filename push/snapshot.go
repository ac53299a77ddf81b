package push

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/onair/onair/rooms/wire"
)

// roomExists reports whether the room was ever opened ({r<id>}:room).
func (g *Gateway) roomExists(ctx context.Context, id uint64) (bool, error) {
	n, err := g.cfg.Redis.Exists(ctx, wire.Key(g.cfg.Prefix, id, wire.KindRoom)).Result()
	return n > 0, err
}

// ensureLoaded fills a room this node has just started to hold from Redis:
// the latest leaderboard and pk frames, and the recent danmaku. It runs
// once per room; joiners wait for it. Frames the consumer took in since the
// room was created are newer than or equal to Redis' (dropped by seq or
// version), so the two merge without duplicates. A Redis failure is logged
// and counted, and the viewer joins with what the node has. joiner is the
// joining user, counted in the first head-count.
func (g *Gateway) ensureLoaded(r *room, joiner uint64) {
	r.load.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		var state *redis.MapStringStringCmd
		var recent *redis.StringSliceCmd
		_, err := g.cfg.Redis.Pipelined(ctx, func(p redis.Pipeliner) error {
			state = p.HGetAll(ctx, wire.Key(g.cfg.Prefix, r.id, wire.KindState))
			recent = p.LRange(ctx, wire.Key(g.cfg.Prefix, r.id, wire.KindRecent), 0, -1)
			return nil
		})
		if err != nil {
			g.m.errors.WithLabelValues("snapshot").Inc()
			g.log.Warn("push: cannot read room state for a snapshot", "room", r.id, "err", err)
			return
		}
		var frames []frame
		for _, field := range []string{wire.TypeLeaderboard, wire.TypePK} {
			if v, ok := state.Val()[field]; ok {
				f, err := parseFrame([]byte(v), 0)
				if err != nil || f.typ != field {
					g.badStored(r.id, wire.KindState+"."+field, err)
					continue
				}
				frames = append(frames, f)
			}
		}
		list := recent.Val()
		for i := len(list) - 1; i >= 0; i-- { // oldest first
			f, err := parseFrame([]byte(list[i]), -1)
			if err != nil {
				g.badStored(r.id, wire.KindRecent, err)
				continue
			}
			frames = append(frames, f)
		}
		r.merge(frames, len(list) >= wire.RecentDanmaku)
		// The joiner counts itself: the first head-count of a fresh room.
		totals, err := g.online.report(ctx, []uint64{r.id}, [][]uint64{append(r.users(), joiner)})
		if err != nil {
			g.m.errors.WithLabelValues("online").Inc()
			g.log.Warn("push: cannot merge the head-count for a snapshot", "room", r.id, "err", err)
			return
		}
		r.add(onlineFrame(r.id, time.Now().UnixMilli(), totals[0]))
	})
}

func (g *Gateway) badStored(room uint64, key string, err error) {
	g.m.errors.WithLabelValues("snapshot").Inc()
	g.log.Warn("push: bad frame in Redis, skipped", "room", room, "key", key, "err", err)
}

// merge takes in frames read from Redis: state frames when newer than the
// node's, events older than the ring's first (the consumer's are newer).
// truncated says Redis' list may miss older events.
func (r *room) merge(frames []frame, truncated bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var events []frame
	first := int64(-1)
	if len(r.ring) > 0 {
		first = r.ring[0].seq
	}
	for _, f := range frames {
		if f.class == classState {
			if cur, ok := r.state[f.typ]; !ok || f.newer(cur) {
				r.state[f.typ] = f
			}
			continue
		}
		if first < 0 || f.seq < first {
			if len(events) == 0 || f.seq > events[len(events)-1].seq {
				events = append(events, f)
			}
		}
	}
	if len(events) == 0 {
		return
	}
	if truncated {
		r.knownFrom = events[0].seq
	}
	// Everything read from Redis was already sent by the nodes that had
	// viewers: it belongs to snapshots, not to the next batch.
	r.flushedSeq = max(r.flushedSeq, events[len(events)-1].seq)
	r.lastSeq = max(r.lastSeq, events[len(events)-1].seq)
	ring := append(events, r.ring...)
	if over := len(ring) - r.g.cfg.RingSize; over > 0 {
		r.knownFrom = ring[over-1].seq + 1
		ring = ring[over:]
	}
	r.ring = ring
}

// online frame: {"type":"online","room_id":5,"version":N,"count":1234}
func onlineFrame(room uint64, version, count int64) frame {
	b := fmt.Appendf(nil, `{"type":%q,"room_id":%d,"version":%d,"count":%d}`, wire.TypeOnline, room, version, count)
	return frame{typ: wire.TypeOnline, class: classState, version: version, raw: b}
}
