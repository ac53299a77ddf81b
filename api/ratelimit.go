package api

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"

	"github.com/onair/onair/internal/refusal"
)

// rateLimiter limits requests per user in Redis (GCRA, go-redis/redis_rate),
// so the limit holds across every API node.
//
// Two local memories save Redis round trips without loosening the limit:
//   - a lease: each Redis call takes up to leaseSize tokens at once, which
//     this node then hands out until they run out or leaseFor passes.
//     Tokens are consumed in Redis when leased, and a node holds at most one
//     lease per user, so in any window all nodes together use at most what
//     Redis granted in it plus one lease per node: the lease's lifetime does
//     not loosen the limit, it only bounds how long unused tokens linger
//     (they are then wasted). So leases live long: a listener reporting
//     every few seconds costs one Redis call per leaseSize reports, not one
//     per report (with a 30 s life, a report every 5 s paid a call every
//     6th report instead of every 10th), and a user back after a pause
//     spends what is left of the lease first.
//   - one call at a time: while a request of a user asks Redis, the node's
//     other requests of that user wait for its answer and spend its lease,
//     instead of each leasing (and all but one lease being overwritten, its
//     tokens consumed in Redis and never used: the user got a fraction of
//     the limit).
//   - a denial: a user Redis refused is refused locally until RetryAfter,
//     since GCRA allows nothing before then.
type rateLimiter struct {
	l         *redis_rate.Limiter
	limit     redis_rate.Limit
	leaseSize int
	// lastLog is when the last limiter failure was logged (unix ns).
	lastLog atomic.Int64

	mu    sync.Mutex
	users map[uint64]localLimit // bounded by maxLocalUsers
}

type localLimit struct {
	deniedUntil int64 // unix ns
	tokens      int   // leased tokens left
	leaseUntil  int64 // unix ns after which the lease is void
	// asking, when not nil, is closed when this node's Redis call for the
	// user returns.
	asking chan struct{}
}

const (
	maxLocalUsers = 1 << 16
	leaseFor      = int64(10 * time.Minute)
	// leasesPerSecond: one lease is 1/leasesPerSecond of a second's limit
	// (10 tokens at 200/s, 5 000 at 100 000/s). So for a user at the limit
	// a node asks Redis this many times a second whatever the limit, and
	// never holds more than that share of it.
	leasesPerSecond = 20
)

// local decides from memory: allowed from a lease, refused until a time,
// wait for the Redis call in flight (then decide again), or ask Redis: ask
// is not nil, and the caller must pass it to settle.
func (l *rateLimiter) local(uid uint64, now int64) (allowed bool, refused time.Duration, wait, ask chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	u, ok := l.users[uid]
	switch {
	case ok && u.asking != nil:
		return false, 0, u.asking, nil
	case ok && now < u.deniedUntil:
		return false, time.Duration(u.deniedUntil - now), nil, nil
	case ok && u.tokens > 0 && now < u.leaseUntil:
		u.tokens--
		l.users[uid] = u
		return true, 0, nil, nil
	}
	if !ok && len(l.users) >= maxLocalUsers {
		for k := range l.users { // evict an arbitrary entry
			delete(l.users, k)
			break
		}
	}
	ask = make(chan struct{})
	l.users[uid] = localLimit{asking: ask}
	return false, 0, nil, ask
}

// settle records Redis's answer to the call local asked for — a lease of n
// tokens (one of them used now), a denial until a time, or nothing after
// an error — and wakes the requests waiting for it.
func (l *rateLimiter) settle(uid uint64, ask chan struct{}, u localLimit) {
	l.mu.Lock()
	l.users[uid] = u
	l.mu.Unlock()
	close(ask)
}

func newRateLimiter(rdb redis.UniversalClient, prefix string, perSecond int) *rateLimiter {
	return &rateLimiter{
		l:         redis_rate.NewLimiter(prefixedScripts{rdb, prefix}),
		limit:     redis_rate.PerSecond(perSecond),
		leaseSize: max(1, perSecond/leasesPerSecond),
		users:     make(map[uint64]localLimit),
	}
}

// rateLimit is the middleware of every /v1 route, after authenticate. If
// Redis fails the request is let through (and counted under reason
// ratelimit_failed): losing the limiter must not stop ingest, which api.md
// requires to keep accepting while Redis is down.
func (s *Server) rateLimit(c *gin.Context) {
	cl, _ := ClaimsFrom(c)
	var ask chan struct{}
	for ask == nil {
		now := s.now().UnixNano()
		allowed, refused, wait, a := s.limiter.local(cl.UserID, now)
		switch {
		case allowed:
			c.Next()
			return
		case refused > 0:
			s.tooMany(c, refused)
			return
		case wait != nil:
			select {
			case <-wait: // the call in flight answered: decide again
			case <-c.Request.Context().Done():
				c.Abort() // the client is gone
				return
			}
		}
		ask = a
	}
	now := s.now().UnixNano()
	ctx, cancel := context.WithTimeout(c.Request.Context(), rateLimitTimeout)
	// Up to a lease, as many tokens as Redis has: near the limit a smaller
	// lease, still in one call.
	res, err := s.limiter.l.AllowAtMost(ctx, strconv.FormatUint(cl.UserID, 10), s.limiter.limit, s.limiter.leaseSize)
	cancel()
	switch {
	case err != nil:
		s.limiter.settle(cl.UserID, ask, localLimit{})
		s.countDegraded(c, "ratelimit_failed")
		// At 10k+ requests/s a Redis outage would otherwise log one line
		// per request: one every few seconds says the same.
		if sampleDue(&s.limiter.lastLog) {
			s.log.Warn("rate limiter unavailable, requests let through", "user", cl.UserID, "err", err)
		}
		c.Next()
	case res.Allowed == 0:
		s.limiter.settle(cl.UserID, ask, localLimit{deniedUntil: now + int64(res.RetryAfter)})
		s.tooMany(c, res.RetryAfter)
	default:
		s.limiter.settle(cl.UserID, ask, localLimit{tokens: res.Allowed - 1, leaseUntil: now + leaseFor})
		c.Next()
	}
}

func (s *Server) tooMany(c *gin.Context, retry time.Duration) {
	WriteError(c, &refusal.Error{
		Kind:    refusal.RateLimited,
		Message: "rate limit of " + strconv.Itoa(s.limiter.limit.Rate) + " requests per second exceeded",
		// whole milliseconds, rounded up: Retry-After is then the
		// seconds rounded up, at least 1
		RetryAfterMs: max(1, (retry + time.Millisecond - 1).Milliseconds()),
	})
}

// prefixedScripts puts a key prefix in front of every key redis_rate
// touches. redis_rate hard-codes "rate:" as the start of its keys; with this
// the keys are <prefix>rate:<user>, so deployments sharing a Redis (and
// tests, each with its own prefix) stay apart.
type prefixedScripts struct {
	redis.UniversalClient
	prefix string
}

func (p prefixedScripts) keys(keys []string) []string {
	if p.prefix == "" {
		return keys
	}
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = p.prefix + k
	}
	return out
}

// Eval implements redis_rate's client interface with prefixed keys.
func (p prefixedScripts) Eval(ctx context.Context, script string, keys []string, args ...any) *redis.Cmd {
	return p.UniversalClient.Eval(ctx, script, p.keys(keys), args...)
}

// EvalSha implements redis_rate's client interface with prefixed keys.
func (p prefixedScripts) EvalSha(ctx context.Context, sha1 string, keys []string, args ...any) *redis.Cmd {
	return p.UniversalClient.EvalSha(ctx, sha1, p.keys(keys), args...)
}

// EvalRO implements redis_rate's client interface with prefixed keys.
func (p prefixedScripts) EvalRO(ctx context.Context, script string, keys []string, args ...any) *redis.Cmd {
	return p.UniversalClient.EvalRO(ctx, script, p.keys(keys), args...)
}

// EvalShaRO implements redis_rate's client interface with prefixed keys.
func (p prefixedScripts) EvalShaRO(ctx context.Context, sha1 string, keys []string, args ...any) *redis.Cmd {
	return p.UniversalClient.EvalShaRO(ctx, sha1, p.keys(keys), args...)
}

// Del implements redis_rate's client interface with prefixed keys.
func (p prefixedScripts) Del(ctx context.Context, keys ...string) *redis.IntCmd {
	return p.UniversalClient.Del(ctx, p.keys(keys)...)
}
