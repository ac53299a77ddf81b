package api

import (
	"sync"
	"time"
)

// touchFresh is how long a node trusts the pause flag it last read. The
// settings endpoint of the same node invalidates at once; other nodes see a
// change within this, inside api.md's "effective within 1 s".
const touchFresh = 500 * time.Millisecond

// touchCache remembers, per user, that this node already touched them
// today: a later event of the same day is certainly not the first, so it
// needs Redis only to refresh the pause flag (one HEXISTS instead of the
// Touch script), and not even that within touchFresh. Active users report
// every few seconds, so this saves most Touch scripts.
type touchCache struct {
	mu    sync.Mutex
	users map[uint64]touched
}

type touched struct {
	day     int32 // yyyymmdd in the server's time zone
	checked int64 // unix ns of the Touch that read paused
	paused  bool
}

const maxTouchUsers = 1 << 17

func dayOf(t time.Time) int32 {
	y, m, d := t.Date()
	return int32(y*10000 + int(m)*100 + d)
}

// get reports whether this node touched uid today, and the pause flag if
// it read it within touchFresh.
func (tc *touchCache) get(uid uint64, now time.Time) (today, fresh, paused bool) {
	tc.mu.Lock()
	t, ok := tc.users[uid]
	tc.mu.Unlock()
	if !ok || t.day != dayOf(now) {
		return false, false, false
	}
	return true, now.UnixNano()-t.checked < int64(touchFresh), t.paused
}

func (tc *touchCache) put(uid uint64, now time.Time, paused bool) {
	tc.mu.Lock()
	if _, ok := tc.users[uid]; !ok && len(tc.users) >= maxTouchUsers {
		clear(tc.users) // cheap and rare: the next events re-Touch
	}
	tc.users[uid] = touched{day: dayOf(now), checked: now.UnixNano(), paused: paused}
	tc.mu.Unlock()
}

func (tc *touchCache) forget(uid uint64) {
	tc.mu.Lock()
	delete(tc.users, uid)
	tc.mu.Unlock()
}
