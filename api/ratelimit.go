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
	l     *redis_rate.Limiter
	limit redis_rate.Limit
	// key is put before the user id in Redis ("" for requests, "ev:" for
	// events), so each budget has a GCRA state of its own.
	key string
	// unit names what is counted, in refusals ("requests", "events").
	unit      string
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

// local decides a cost of n from memory: allowed from a lease, refused
// until a time, wait for the Redis call in flight (then decide again), or
// ask Redis: ask is not nil, have is what the lease still holds, and the
// caller must pass ask to settle.
func (l *rateLimiter) local(uid uint64, now int64, n int) (allowed bool, refused time.Duration, wait, ask chan struct{}, have int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	u, ok := l.users[uid]
	valid := ok && now < u.leaseUntil
	switch {
	case ok && u.asking != nil:
		return false, 0, u.asking, nil, 0
	case valid && u.tokens >= n:
		u.tokens -= n
		l.users[uid] = u
		return true, 0, nil, nil, 0
	case ok && now < u.deniedUntil:
		return false, time.Duration(u.deniedUntil - now), nil, nil, 0
	}
	if valid {
		have = u.tokens
	}
	if !ok && len(l.users) >= maxLocalUsers {
		for k := range l.users { // evict an arbitrary entry
			delete(l.users, k)
			break
		}
	}
	ask = make(chan struct{})
	l.users[uid] = localLimit{asking: ask}
	return false, 0, nil, ask, have
}

// settle records Redis's answer to the call local asked for — a lease of
// tokens (the cost already taken), a denial until a time, or nothing after
// an error — and wakes the requests waiting for it.
func (l *rateLimiter) settle(uid uint64, ask chan struct{}, u localLimit) {
	l.mu.Lock()
	l.users[uid] = u
	l.mu.Unlock()
	close(ask)
}

func newRateLimiter(rdb redis.UniversalClient, prefix string, perSecond int) *rateLimiter {
	return newBudget(rdb, prefix, "", "requests", redis_rate.PerSecond(perSecond))
}

// newBudget is a limiter of limit (its Burst is the largest cost it can
// ever allow) under key.
func newBudget(rdb redis.UniversalClient, prefix, key, unit string, limit redis_rate.Limit) *rateLimiter {
	return &rateLimiter{
		l:         redis_rate.NewLimiter(prefixedScripts{rdb, prefix}),
		limit:     limit,
		key:       key,
		unit:      unit,
		leaseSize: max(1, limit.Rate/leasesPerSecond),
		users:     make(map[uint64]localLimit),
	}
}

// take spends n tokens of uid's budget. retry > 0: refused, try again then.
// err: Redis failed, nothing was decided (callers let the request through:
// losing the limiter must not stop ingest, which api.md requires to keep
// accepting while Redis is down). done: ctx ended while waiting.
//
// A cost the lease does not cover asks Redis for what is missing (at least
// a lease) in one call; tokens Redis grants short of the cost stay in the
// lease, so a large cost is paid over several calls and never lost.
func (l *rateLimiter) take(ctx context.Context, uid uint64, n int, clock func() time.Time) (retry time.Duration, err error) {
	var ask chan struct{}
	var have int
	for ask == nil {
		allowed, refused, wait, a, h := l.local(uid, clock().UnixNano(), n)
		switch {
		case allowed:
			return 0, nil
		case refused > 0:
			return refused, nil
		case wait != nil:
			select {
			case <-wait: // the call in flight answered: decide again
			case <-ctx.Done():
				return 0, ctx.Err()
			}
		}
		ask, have = a, h
	}
	now := clock().UnixNano()
	rctx, cancel := context.WithTimeout(ctx, rateLimitTimeout)
	// Up to a lease, as many tokens as Redis has: near the limit a smaller
	// lease, still in one call.
	res, err := l.l.AllowAtMost(rctx, l.key+strconv.FormatUint(uid, 10), l.limit, max(n-have, l.leaseSize))
	cancel()
	if err != nil {
		l.settle(uid, ask, localLimit{})
		return 0, err
	}
	total := have + res.Allowed
	if total >= n {
		l.settle(uid, ask, localLimit{tokens: total - n, leaseUntil: now + leaseFor})
		return 0, nil
	}
	// Short by n-total tokens: GCRA emits one every period/rate, the first
	// after RetryAfter when Redis had none left.
	interval := l.limit.Period / time.Duration(l.limit.Rate)
	retry = time.Duration(n-total) * interval
	if res.Allowed == 0 && res.RetryAfter > 0 {
		retry = res.RetryAfter + time.Duration(n-total-1)*interval
	}
	l.settle(uid, ask, localLimit{tokens: total, leaseUntil: now + leaseFor, deniedUntil: now + int64(retry)})
	return retry, nil
}

// rateLimit is the middleware of every /v1 route, after authenticate: one
// request costs one token. If Redis fails the request is let through (and
// counted under reason ratelimit_failed).
func (s *Server) rateLimit(c *gin.Context) {
	cl, _ := ClaimsFrom(c)
	retry, err := s.limiter.take(c.Request.Context(), cl.UserID, 1, s.now)
	switch {
	case err != nil && c.Request.Context().Err() != nil:
		c.Abort() // the client is gone
	case err != nil:
		s.limiterFailed(c, s.limiter, cl.UserID, err)
		c.Next()
	case retry > 0:
		s.tooMany(c, s.limiter, retry, 1)
	default:
		c.Next()
	}
}

// limiterFailed counts and (sampled) logs a budget Redis could not decide.
func (s *Server) limiterFailed(c *gin.Context, l *rateLimiter, uid uint64, err error) {
	s.countDegraded(c, "ratelimit_failed")
	// At 10k+ requests/s a Redis outage would otherwise log one line
	// per request: one every few seconds says the same.
	if sampleDue(&l.lastLog) {
		s.log.Warn("rate limiter unavailable, requests let through", "budget", l.unit, "user", uid, "err", err)
	}
}

// tooMany is the 429 of budget l for a cost of n: Retry-After, and the
// message names the budget (requests or events per second) and the cost.
func (s *Server) tooMany(c *gin.Context, l *rateLimiter, retry time.Duration, n int) {
	e := &refusal.Error{
		Kind: refusal.RateLimited,
		// whole milliseconds, rounded up: Retry-After is then the
		// seconds rounded up, at least 1
		RetryAfterMs: max(1, (retry + time.Millisecond - 1).Milliseconds()),
	}
	if l.unit == "requests" {
		e.Message = "rate limit of " + strconv.Itoa(l.limit.Rate) + " requests per second exceeded"
	} else {
		e.Field, e.Reason = "events", "event_budget"
		e.Message = "event budget of " + strconv.Itoa(l.limit.Rate) + " events per second (burst " + strconv.Itoa(l.limit.Burst) +
			") exceeded: this request costs " + strconv.Itoa(n) + " events; retry after the Retry-After seconds"
	}
	WriteError(c, e)
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
