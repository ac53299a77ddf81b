package api

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/onair/onair/history"
)

// touchFresh is how long a node trusts the pause flag it last read when
// no pause watcher is live. The settings endpoint of the same node
// invalidates at once; other nodes see a change within this, inside
// api.md's "effective within 1 s".
const touchFresh = 500 * time.Millisecond

// With a live pause watcher (history.Store.WatchPauses) every pause change
// on any node invalidates the flag here within milliseconds, so it is
// trusted for touchTrust. The watcher is live while it heard from Redis
// within watchLive (it pings every history.PausePing); once it falls
// silent, touchFresh applies again.
const (
	touchTrust = 30 * time.Second
	watchLive  = 3 * history.PausePing
)

// touchCache remembers, per user, that this node already touched them
// today: a later event of the same day is certainly not the first, so it
// needs Redis only to refresh the pause flag (one HEXISTS instead of the
// Touch script), and not even that while the flag is fresh. Active users
// report every few seconds, so this saves most Touch scripts.
type touchCache struct {
	mu    sync.Mutex
	users map[uint64]touched
	// epoch counts invalidations: a flag read that began before one is
	// not cached, since it may predate the change.
	epoch uint64
	// heard is when the pause watcher last heard from Redis (unix ns of
	// the server clock); 0 without a watcher.
	heard atomic.Int64
}

type touched struct {
	day     int32 // yyyymmdd in the server's time zone
	checked int64 // unix ns of the Touch that read paused; 0 = stale
	paused  bool
}

const maxTouchUsers = 1 << 17

func dayOf(t time.Time) int32 {
	y, m, d := t.Date()
	return int32(y*10000 + int(m)*100 + d)
}

// get reports whether this node touched uid today, whether the pause flag
// it keeps is fresh, and the flag; epoch goes back to put.
func (tc *touchCache) get(uid uint64, now time.Time) (today, fresh, paused bool, epoch uint64) {
	tc.mu.Lock()
	t, ok := tc.users[uid]
	epoch = tc.epoch
	tc.mu.Unlock()
	if !ok || t.day != dayOf(now) {
		return false, false, false, epoch
	}
	ns := now.UnixNano()
	age := ns - t.checked
	fresh = age < int64(touchFresh) ||
		(age < int64(touchTrust) && ns-tc.heard.Load() < int64(watchLive))
	return true, fresh, t.paused, epoch
}

// put records a flag read that began at epoch, unless an invalidation came
// since.
func (tc *touchCache) put(uid uint64, now time.Time, paused bool, epoch uint64) {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	if epoch != tc.epoch {
		return
	}
	if _, ok := tc.users[uid]; !ok && len(tc.users) >= maxTouchUsers {
		clear(tc.users) // cheap and rare: the next events re-Touch
	}
	tc.users[uid] = touched{day: dayOf(now), checked: now.UnixNano(), paused: paused}
}

// invalidate makes uid's flag stale (the day stays touched).
func (tc *touchCache) invalidate(uid uint64) {
	tc.mu.Lock()
	tc.epoch++
	if t, ok := tc.users[uid]; ok {
		t.checked = 0
		tc.users[uid] = t
	}
	tc.mu.Unlock()
}

// reset forgets everything: notices may have been missed.
func (tc *touchCache) reset() {
	tc.mu.Lock()
	tc.epoch++
	clear(tc.users)
	tc.mu.Unlock()
}

// onPauseNotice applies a report of the pause watcher.
func (s *Server) onPauseNotice(n history.PauseNotice) {
	switch {
	case n.Reset:
		s.touched.reset()
	case n.Changed:
		s.touched.invalidate(n.UserID)
	}
	s.touched.heard.Store(s.now().UnixNano())
}

// pauseWatcher is implemented by a History that can report pause changes
// made on other nodes (*history.Store).
type pauseWatcher interface {
	WatchPauses(ctx context.Context, f func(history.PauseNotice))
}
