package api

import (
	"context"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
)

// rateLimitTimeout bounds the Redis round trip of the limiter, so a slow
// Redis delays requests by at most this much before they are let through.
const rateLimitTimeout = 250 * time.Millisecond

// rateLimiter limits requests per user in Redis (GCRA, go-redis/redis_rate),
// so the limit holds across every API node.
type rateLimiter struct {
	l     *redis_rate.Limiter
	limit redis_rate.Limit
	// lastLog is when the last limiter failure was logged (unix ns).
	lastLog atomic.Int64

	// denied remembers users Redis refused until their RetryAfter passes:
	// GCRA allows nothing before then, so a client hammering past its
	// limit is refused locally instead of costing a Redis round trip per
	// request. Bounded like the token cache.
	mu     sync.Mutex
	denied map[uint64]int64 // user → unix ns when Redis may allow again
}

const maxDenied = 1 << 14

// blocked returns how long uid is still known to be refused, or 0.
func (l *rateLimiter) blocked(uid uint64, now int64) time.Duration {
	l.mu.Lock()
	until, ok := l.denied[uid]
	if ok && now >= until {
		delete(l.denied, uid)
		ok = false
	}
	l.mu.Unlock()
	if !ok {
		return 0
	}
	return time.Duration(until - now)
}

func (l *rateLimiter) deny(uid uint64, until int64) {
	l.mu.Lock()
	if len(l.denied) >= maxDenied {
		for k := range l.denied {
			delete(l.denied, k)
			break
		}
	}
	l.denied[uid] = until
	l.mu.Unlock()
}

func newRateLimiter(rdb redis.UniversalClient, prefix string, perSecond int) *rateLimiter {
	return &rateLimiter{
		l:      redis_rate.NewLimiter(prefixedScripts{rdb, prefix}),
		limit:  redis_rate.PerSecond(perSecond),
		denied: make(map[uint64]int64),
	}
}

// rateLimit is the middleware of every /v1 route, after authenticate. If
// Redis fails the request is let through (and counted under reason
// ratelimit_failed): losing the limiter must not stop ingest, which api.md
// requires to keep accepting while Redis is down.
func (s *Server) rateLimit(c *gin.Context) {
	cl, _ := ClaimsFrom(c)
	now := time.Now().UnixNano()
	if d := s.limiter.blocked(cl.UserID, now); d > 0 {
		s.tooMany(c, d)
		return
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), rateLimitTimeout)
	res, err := s.limiter.l.Allow(ctx, strconv.FormatUint(cl.UserID, 10), s.limiter.limit)
	cancel()
	if err != nil {
		s.countDegraded(c, "ratelimit_failed")
		// At 10k+ requests/s a Redis outage would otherwise log one line
		// per request: one every few seconds says the same.
		if now := time.Now().UnixNano(); now-s.limiter.lastLog.Load() > int64(5*time.Second) {
			s.limiter.lastLog.Store(now)
			s.log.Warn("rate limiter unavailable, requests let through", "user", cl.UserID, "err", err)
		}
		c.Next()
		return
	}
	if res.Allowed == 0 {
		s.limiter.deny(cl.UserID, now+int64(res.RetryAfter))
		s.tooMany(c, res.RetryAfter)
		return
	}
	c.Next()
}

func (s *Server) tooMany(c *gin.Context, retry time.Duration) {
	WriteError(c, &Error{
		Status:     429,
		Code:       CodeRateLimited,
		Message:    "rate limit of " + strconv.Itoa(s.limiter.limit.Rate) + " requests per second exceeded",
		RetryAfter: max(1, int(math.Ceil(retry.Seconds()))),
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
