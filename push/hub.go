package push

import (
	"context"
	"sync"
	"time"
)

// numHubShards splits the room registry so a join in one room never
// contends with the fan-out of another (centrifuge's hub.go).
const numHubShards = 64

// hub is the node's registry of rooms with viewers.
type hub struct {
	g      *Gateway
	shards [numHubShards]hubShard
}

type hubShard struct {
	mu    sync.RWMutex
	rooms map[uint64]*room
}

func newHub(g *Gateway) *hub {
	h := &hub{g: g}
	for i := range h.shards {
		h.shards[i].rooms = make(map[uint64]*room)
	}
	return h
}

func (h *hub) shard(id uint64) *hubShard { return &h.shards[id%numHubShards] }

// get returns the room if this node has viewers in it: the consumer's
// per-record check, so records of other rooms cost one map lookup.
func (h *hub) get(id uint64) *room {
	s := h.shard(id)
	s.mu.RLock()
	r := s.rooms[id]
	s.mu.RUnlock()
	return r
}

// acquire returns the room, created when it has no viewer yet, with one
// more reference; every acquire is paired with a release.
func (h *hub) acquire(id uint64) *room {
	s := h.shard(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.rooms[id]
	if r == nil {
		r = newRoom(h.g, id)
		s.rooms[id] = r
		h.g.m.rooms.Inc()
	}
	r.refs++
	return r
}

// release drops a reference; the last one removes the room (its ring goes
// with it) and reports true.
func (h *hub) release(r *room) bool {
	s := h.shard(r.id)
	s.mu.Lock()
	defer s.mu.Unlock()
	r.refs--
	if r.refs > 0 {
		return false
	}
	delete(s.rooms, r.id)
	h.g.m.rooms.Dec()
	return true
}

// all appends every room to buf.
func (h *hub) all(buf []*room) []*room {
	for i := range h.shards {
		s := &h.shards[i]
		s.mu.RLock()
		for _, r := range s.rooms {
			buf = append(buf, r)
		}
		s.mu.RUnlock()
	}
	return buf
}

// tickLoop flushes every room each BatchInterval: one batch per room and
// level, whatever arrived since the last tick.
func (h *hub) tickLoop(ctx context.Context) {
	t := time.NewTicker(h.g.cfg.BatchInterval)
	defer t.Stop()
	var buf []*room
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			buf = h.all(buf[:0])
			for _, r := range buf {
				r.flush(now)
			}
			clear(buf)
		}
	}
}
