package recommend

import (
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// stationActors is a node's stations: one actor per station with its mailbox and
// its double buffer of playlists, and the catalog snapshot they build from.
// It does no I/O: the catalog follower feeds it, the handlers read it.
type stationActors struct {
	log      *slog.Logger
	m        *metrics
	now      func() time.Time
	debounce time.Duration

	snap atomic.Pointer[Snapshot]

	mu     sync.RWMutex
	actors map[uint64]*actor
	stop   chan struct{}
	wg     sync.WaitGroup
}

func newStationActors(log *slog.Logger, m *metrics, now func() time.Time, debounce time.Duration) *stationActors {
	s := &stationActors{log: log, m: m, now: now, debounce: debounce, actors: map[uint64]*actor{}, stop: make(chan struct{})}
	s.snap.Store(NewSnapshot(0, map[uint64]*Item{}))
	return s
}

// lists is an actor's double buffer: the playlist of the daypart in force
// and the next one, built ahead. Readers load it atomically and pick the
// one whose window holds their instant, so the switch happens at the next
// daypart's first instant whatever the actor is doing then. After a
// rotation it keeps the list it replaced (prev): a request that took its
// instant just before the switch and looks up just after still finds it.
type lists struct {
	prev, cur, next *Playlist // nil: no daypart (or, for prev, no rotation yet)
	station         *Station  // the version they were built from
}

func (l *lists) at(t time.Time) *Playlist {
	for _, p := range []*Playlist{l.cur, l.next, l.prev} {
		if p != nil && !t.Before(p.Window.Start) && t.Before(p.Window.End) {
			return p
		}
	}
	return nil
}

// actor owns one station's playlists. Its mailbox holds at most one
// pending wake-up: changes arriving while one is pending merge into it.
type actor struct {
	s       *stationActors
	station atomic.Pointer[Station]
	wake    chan struct{}
	lists   atomic.Pointer[lists]
}

// setStation installs st (prepared) and wakes its actor, starting it the
// first time.
func (s *stationActors) setStation(st *Station) {
	s.mu.Lock()
	a, ok := s.actors[st.ID]
	if !ok {
		a = &actor{s: s, wake: make(chan struct{}, 1)}
		s.actors[st.ID] = a
	}
	a.station.Store(st)
	s.mu.Unlock()
	if !ok {
		a.rebuild("start")
		s.wg.Add(1)
		go a.run()
		return
	}
	a.notify(1)
}

// setSnapshot publishes snap and wakes every station that changed may
// touch (changed: the old and new versions of the items that changed).
func (s *stationActors) setSnapshot(snap *Snapshot, changed []*Item) {
	s.snap.Store(snap)
	s.m.items.Set(float64(snap.Len()))
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, a := range s.actors {
		st := a.station.Load()
		n := 0
		for _, it := range changed {
			if st.mayUse(it) {
				n++
			}
		}
		if n > 0 {
			a.notify(n)
		}
	}
}

// notify delivers n changes to the mailbox.
func (a *actor) notify(n int) {
	a.s.m.changes.Add(float64(n))
	select {
	case a.wake <- struct{}{}:
		a.s.m.merged.Add(float64(n - 1))
	default:
		a.s.m.merged.Add(float64(n))
	}
}

func (a *actor) run() {
	defer a.s.wg.Done()
	for {
		timer := time.NewTimer(a.untilSwitch())
		select {
		case <-a.s.stop:
			timer.Stop()
			return
		case <-a.wake:
			timer.Stop()
			// Let the rest of a burst arrive, then fold it into this rebuild.
			if a.s.debounce > 0 {
				select {
				case <-time.After(a.s.debounce):
				case <-a.s.stop:
					return
				}
			}
			select {
			case <-a.wake:
				a.s.m.merged.Inc()
			default:
			}
			a.rebuild("change")
		case <-timer.C:
			a.rotate()
		}
	}
}

// untilSwitch is how long until the next list takes over (then the one
// after it is built), or an hour when the clock has nothing ahead.
func (a *actor) untilSwitch() time.Duration {
	if l := a.lists.Load(); l != nil && l.next != nil {
		return max(l.next.Window.Start.Sub(a.s.now()), 0)
	}
	return time.Hour
}

// rebuild builds the current and the next daypart's lists.
func (a *actor) rebuild(cause string) {
	t0 := time.Now()
	st, snap, now := a.station.Load(), a.s.snap.Load(), a.s.now()
	l := &lists{station: st}
	from := now
	if w, ok := st.WindowAt(now); ok {
		l.cur = Build(snap, st, w)
		from = w.End
	}
	if w, ok := st.NextWindow(from); ok {
		l.next = Build(snap, st, w)
	}
	a.lists.Store(l)
	a.s.m.rebuilds.WithLabelValues(cause).Inc()
	a.s.m.rebuildSecs.Observe(time.Since(t0).Seconds())
}

// rotate runs at a switch: the next list becomes current and the one
// after it is built ahead.
func (a *actor) rotate() {
	old := a.lists.Load()
	st, now := a.station.Load(), a.s.now()
	if old == nil || old.next == nil || old.station != st || !now.Before(old.next.Window.End) {
		a.rebuild("boundary")
		return
	}
	t0 := time.Now()
	l := &lists{station: st, prev: old.cur, cur: old.next}
	if w, ok := st.NextWindow(old.next.Window.End); ok {
		l.next = Build(a.s.snap.Load(), st, w)
	}
	a.lists.Store(l)
	a.s.m.rebuilds.WithLabelValues("boundary").Inc()
	a.s.m.rebuildSecs.Observe(time.Since(t0).Seconds())
}

// public returns station id's public playlist at t and the station, or
// ok false for an unknown station. A nil playlist means no daypart at t.
// built reports a list built on this call (nothing ahead covered t).
func (s *stationActors) public(id uint64, t time.Time) (pl *Playlist, st *Station, ok bool) {
	s.mu.RLock()
	a := s.actors[id]
	s.mu.RUnlock()
	if a == nil {
		return nil, nil, false
	}
	if l := a.lists.Load(); l != nil {
		if pl := l.at(t); pl != nil {
			return pl, l.station, true
		}
	}
	st = a.station.Load()
	w, inside := st.WindowAt(t)
	if !inside {
		return nil, st, true
	}
	if d := t.Sub(s.now()); d > -time.Minute && d < time.Minute {
		s.m.fallback.Inc() // a live request the double buffer did not cover
	}
	return Build(s.snap.Load(), st, w), st, true
}

// stations lists the stations by id.
func (s *stationActors) stations() []*Station {
	s.mu.RLock()
	out := make([]*Station, 0, len(s.actors))
	for _, a := range s.actors {
		out = append(out, a.station.Load())
	}
	s.mu.RUnlock()
	slices.SortFunc(out, func(x, y *Station) int {
		switch {
		case x.ID < y.ID:
			return -1
		case x.ID > y.ID:
			return 1
		}
		return 0
	})
	return out
}

func (s *stationActors) station(id uint64) (*Station, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if a := s.actors[id]; a != nil {
		return a.station.Load(), true
	}
	return nil, false
}

// close stops every actor and waits for them.
func (s *stationActors) close() {
	s.mu.Lock()
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	s.mu.Unlock()
	s.wg.Wait()
}
