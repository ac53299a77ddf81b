package push

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/onair/onair/internal/refusal"
)

// Per-user limits of the gateway: connections per user on this node
// (userConns), across nodes (clusterConns, in Redis) and frames per
// connection (frameBucket). Refusals at upgrade are 429 naming "user",
// counted in onair_push_upgrades_total{result="user_node"|"user_cluster"}.

// userConns counts each user's connections (and upgrades under way) on
// this node.
type userConns struct {
	mu  sync.Mutex
	m   map[uint64]int
	max int // < 0: no limit
}

func newUserConns(max int) *userConns { return &userConns{m: make(map[uint64]int), max: max} }

// reserve takes one of user's slots; false when the user holds max.
func (u *userConns) reserve(user uint64) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.max >= 0 && u.m[user] >= u.max {
		return false
	}
	u.m[user]++
	return true
}

func (u *userConns) release(user uint64) {
	u.mu.Lock()
	if u.m[user]--; u.m[user] <= 0 {
		delete(u.m, user)
	}
	u.mu.Unlock()
}

// clusterConns caps a user's connections across push nodes with one
// sorted set per user, {u<id>}:ws (hash-tagged: one cluster slot per user):
// member = connection id (node id:sequence), score = when the slot expires
// (unix ms). The admission script prunes expired members, refuses at max
// and adds the new one; each node's head-count tick pushes the expiry of
// its live connections forward (ZADD XX: a slot removed or never admitted
// is not re-created); a close removes its member. A node that dies stops
// refreshing, and its slots are pruned at the user's next upgrade once
// their expiry (three report intervals) passes. Bound: at most max
// members (only the script adds, and only below max); the key expires
// with its newest slot.
type clusterConns struct {
	rdb    redis.UniversalClient
	prefix string
	node   string
	max    int // < 0: no limit, no Redis work
	ttl    time.Duration
	seq    atomic.Uint64

	mu    sync.Mutex
	slots map[string]uint64 // this node's admitted slots: connection id → user
}

func newClusterConns(rdb redis.UniversalClient, prefix, node string, max int, ttl time.Duration) *clusterConns {
	return &clusterConns{rdb: rdb, prefix: prefix, node: node, max: max, ttl: ttl, slots: make(map[string]uint64)}
}

// UserConnsKey names user's connection set: prefix + "{u<id>}:ws".
func UserConnsKey(prefix string, user uint64) string {
	return prefix + "{u" + strconv.FormatUint(user, 10) + "}:ws"
}

// admitScript: KEYS = {u<id>}:ws; ARGV = connection id, now ms, ttl ms,
// max. Returns 1 (admitted) or 0 (the user holds max live slots).
var admitScript = redis.NewScript(`
local now, ttl = tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then
  return 0
end
redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
redis.call('PEXPIRE', KEYS[1], ttl)
return 1
`)

// admit takes a slot for user; id is the slot's connection id ("" when
// none was taken: no limit, or Redis failed and the check failed open).
func (cc *clusterConns) admit(ctx context.Context, user uint64) (id string, ok bool, err error) {
	if cc.max < 0 {
		return "", true, nil
	}
	id = cc.node + ":" + strconv.FormatUint(cc.seq.Add(1), 10)
	now := time.Now().UnixMilli()
	n, err := admitScript.Run(ctx, cc.rdb, []string{UserConnsKey(cc.prefix, user)}, id, now, cc.ttl.Milliseconds(), cc.max).Int()
	if err != nil {
		return "", true, err
	}
	if n == 0 {
		return "", false, nil
	}
	cc.mu.Lock()
	cc.slots[id] = user
	cc.mu.Unlock()
	return id, true, nil
}

// release frees the slot id of user.
func (cc *clusterConns) release(ctx context.Context, user uint64, id string) error {
	if id == "" {
		return nil
	}
	cc.mu.Lock()
	delete(cc.slots, id)
	cc.mu.Unlock()
	return cc.rdb.ZRem(ctx, UserConnsKey(cc.prefix, user), id).Err()
}

// refresh pushes the expiry of every slot this node holds forward, one
// pipeline (ZADD XX + PEXPIRE per slot).
func (cc *clusterConns) refresh(ctx context.Context) (int, error) {
	cc.mu.Lock()
	if len(cc.slots) == 0 {
		cc.mu.Unlock()
		return 0, nil
	}
	slots := make(map[string]uint64, len(cc.slots))
	for id, u := range cc.slots {
		slots[id] = u
	}
	cc.mu.Unlock()
	exp := float64(time.Now().Add(cc.ttl).UnixMilli())
	_, err := cc.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for id, u := range slots {
			key := UserConnsKey(cc.prefix, u)
			p.ZAddXX(ctx, key, redis.Z{Score: exp, Member: id})
			p.PExpire(ctx, key, cc.ttl)
		}
		return nil
	})
	return len(slots), err
}

// refreshSlots is the head-count tick's refresh of this node's slots.
func (g *Gateway) refreshSlots(ctx context.Context) {
	rctx, cancel := context.WithTimeout(ctx, g.cfg.OnlineInterval)
	n, err := g.cluster.refresh(rctx)
	cancel()
	if err != nil {
		g.m.errors.WithLabelValues("user_conns").Inc()
		if k, ok := g.logs.userConns.Due(); ok {
			g.log.Warn("push: cannot refresh connection slots", "slots", n, "err", err, "count", k)
		}
	}
}

// admitUser applies both per-user limits to an upgrade of user and
// answers the refusal itself (429 naming "user"). On true, the caller
// owns the slots: releaseUser frees them.
func (g *Gateway) admitUser(w http.ResponseWriter, r *http.Request, user uint64) (slot string, ok bool) {
	if !g.users.reserve(user) {
		g.refuseUser(w, user, "user_node", g.cfg.MaxConnsPerUser, "on this node")
		return "", false
	}
	ctx, cancel := context.WithTimeout(r.Context(), time.Second)
	slot, ok, err := g.cluster.admit(ctx, user)
	cancel()
	if err != nil { // fail open: the per-node limit still holds
		g.m.errors.WithLabelValues("user_conns").Inc()
		if k, due := g.logs.userConns.Due(); due {
			g.log.Warn("push: cannot check connections across nodes; admitted on the per-node limit", "user", user, "err", err, "count", k)
		}
	}
	if !ok {
		g.users.release(user)
		g.refuseUser(w, user, "user_cluster", g.cfg.MaxConnsPerUserCluster, "across nodes")
		return "", false
	}
	return slot, true
}

// releaseUser frees what admitUser took.
func (g *Gateway) releaseUser(user uint64, slot string) {
	g.users.release(user)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	err := g.cluster.release(ctx, user, slot)
	cancel()
	if err != nil { // the slot expires after three report intervals
		g.m.errors.WithLabelValues("user_conns").Inc()
		if k, ok := g.logs.userConns.Due(); ok {
			g.log.Warn("push: cannot free a connection slot; it expires", "user", user, "slot", slot, "err", err, "count", k)
		}
	}
}

func (g *Gateway) refuseUser(w http.ResponseWriter, user uint64, reason string, max int, where string) {
	if k, ok := g.logs.refused.Due(); ok {
		g.log.Info("push: upgrade refused: too many connections of one user", "user", user, "limit", reason, "max", max, "count", k)
	}
	g.refuse(w, &refusal.Error{Kind: refusal.RateLimited, Reason: reason, Field: "user", RetryAfterMs: g.cluster.ttl.Milliseconds(),
		Message: "user " + strconv.FormatUint(user, 10) + " already holds " + strconv.Itoa(max) + " connections " + where + "; close one"})
}

// frameBucket is a connection's token bucket for the frames its client
// sends; only the connection's reader touches it.
type frameBucket struct {
	tokens float64
	last   time.Time
}

// allow takes a token, refilled at rate per second up to burst.
func (b *frameBucket) allow(now time.Time, rate float64, burst int) bool {
	if b.last.IsZero() {
		b.tokens = float64(burst)
	} else {
		b.tokens = min(float64(burst), b.tokens+now.Sub(b.last).Seconds()*rate)
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
