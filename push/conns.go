package push

import (
	"context"
	"sync"
	"time"
)

// connSet tracks the hijacked connections, which http.Server.Shutdown does
// not see (VictoriaMetrics' conns_map): add refuses once closing started,
// closeAll closes them spread over a window.
// An upgrade reserves its slot before it answers 101: the client may use
// the connection (and dial another) before the server has registered it,
// and concurrent upgrades must not pass MaxConns between check and add.
type connSet struct {
	mu       sync.Mutex
	m        map[*client]struct{}
	reserved int // upgrades under way, each holding a slot
	max      int // 0 = no limit
	closing  bool
}

func newConnSet(max int) *connSet { return &connSet{m: make(map[*client]struct{}), max: max} }

// reserve takes a slot for an upgrade; false when MaxConns connections and
// upgrades under way fill the set. add or unreserve ends the reservation.
func (s *connSet) reserve() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.max > 0 && len(s.m)+s.reserved >= s.max {
		return false
	}
	s.reserved++
	return true
}

// unreserve frees the slot of an upgrade that failed.
func (s *connSet) unreserve() {
	s.mu.Lock()
	s.reserved--
	s.mu.Unlock()
}

// add registers c in the slot its upgrade reserved; false (the slot freed)
// once closeAll has started.
func (s *connSet) add(c *client) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reserved--
	if s.closing {
		return false
	}
	s.m[c] = struct{}{}
	return true
}

// full reports whether connections and upgrades under way hold MaxConns
// slots: a cheap early refusal, before the room is looked up.
func (s *connSet) full() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.max > 0 && len(s.m)+s.reserved >= s.max
}

func (s *connSet) remove(c *client) {
	s.mu.Lock()
	delete(s.m, c)
	s.mu.Unlock()
}

func (s *connSet) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}

func (s *connSet) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

// closeAll marks the set closing and calls closeFn on every connection,
// spread evenly over window so that clients do not reconnect in a herd.
// When ctx ends first, the rest are closed at once and ctx's error returned.
func (s *connSet) closeAll(ctx context.Context, window time.Duration, closeFn func(*client)) error {
	s.mu.Lock()
	s.closing = true
	all := make([]*client, 0, len(s.m))
	for c := range s.m {
		all = append(all, c)
	}
	s.mu.Unlock()
	if len(all) == 0 {
		return nil
	}
	step := window / time.Duration(len(all))
	var err error
	t := time.NewTimer(0)
	defer t.Stop()
	<-t.C
	for i, c := range all {
		closeFn(c)
		if step <= 0 || err != nil || i == len(all)-1 {
			continue
		}
		t.Reset(step)
		select {
		case <-t.C:
		case <-ctx.Done():
			err = ctx.Err()
		}
	}
	return err
}
