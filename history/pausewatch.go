package history

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/onair/onair/internal/logsample"
)

// PauseNotice is one report of WatchPauses.
type PauseNotice struct {
	// Changed: UserID paused or resumed their history on some node.
	Changed bool
	UserID  uint64
	// Reset: the watcher (re)subscribed, so notices may have been missed
	// before; forget every pause flag read so far.
	Reset bool
	// Neither: a heartbeat, Redis answered the watcher just now. Notices
	// are flowing as long as heartbeats keep coming.
}

// PausePing is how often an idle watcher pings Redis, so that a reader of
// its heartbeats can tell a quiet channel from a dead one.
const PausePing = time.Second

// The pause watcher's retries back off up to pauseMaxBackoff, and a
// failure that repeats is logged at most once per pauseLogEvery.
const (
	pauseMaxBackoff = 5 * time.Second
	pauseLogEvery   = 30 * time.Second
)

// pauseChannel is where SetPaused announces a change: the user id.
func (s *Store) pauseChannel() string { return s.prefix + "pause" }

// WatchPauses reports every pause change made through SetPaused on any node
// sharing this Redis and prefix, so a node may trust a pause flag it read
// for longer than polling would allow. It calls f with a Reset after each
// (re)subscription, with Changed for each change, and with a heartbeat at
// least every PausePing while Redis answers. f runs on the watcher's
// goroutine and must be fast. WatchPauses blocks until ctx ends; a failed
// connection is retried (go-redis resubscribes, and f gets a Reset).
func (s *Store) WatchPauses(ctx context.Context, f func(PauseNotice)) {
	ps := s.rdb.Subscribe(ctx, s.pauseChannel())
	defer ps.Close()
	// While Redis is down every receive fails at once: back off, and log
	// the first failure of a run, then one line per interval with a count.
	var backoff time.Duration
	lost := logsample.Sampler{Every: pauseLogEvery}
	pingFailed := logsample.Sampler{Every: pauseLogEvery}
	for ctx.Err() == nil {
		msg, err := ps.ReceiveTimeout(ctx, PausePing)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			var ne interface{ Timeout() bool }
			if errors.As(err, &ne) && ne.Timeout() {
				// idle: ask for a pong, which comes back as a heartbeat
				if err := ps.Ping(ctx); err != nil {
					if n, ok := pingFailed.Due(); ok {
						s.log.Warn("history: pause watcher ping failed", "failures", n, "err", err)
					}
				}
				continue
			}
			backoff = min(max(2*backoff, PausePing/4), pauseMaxBackoff)
			if n, ok := lost.Due(); ok {
				s.log.Warn("history: pause watcher lost its subscription; resubscribing", "failures", n, "retry_in", backoff, "err", err)
			}
			select {
			case <-ctx.Done():
			case <-time.After(backoff):
			}
			continue
		}
		if backoff > 0 {
			s.log.Info("history: pause watcher subscribed again")
			backoff = 0
			lost.Reset()
		}
		pingFailed.Reset()
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" {
				f(PauseNotice{Reset: true})
			}
		case *redis.Message:
			uid, err := strconv.ParseUint(m.Payload, 10, 64)
			if err != nil {
				s.log.Warn("history: bad pause notice; forgetting every flag", "payload", m.Payload)
				f(PauseNotice{Reset: true})
				continue
			}
			f(PauseNotice{Changed: true, UserID: uid})
		case *redis.Pong:
			f(PauseNotice{})
		}
	}
}
