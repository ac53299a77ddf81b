package accounts

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/onair/onair/internal/pgdb"
)

// Names answers the nickname of a user id for frames and rankings:
// a per-node cache (NamesTTL, NamesSize entries) in front of Redis' hot
// copy ({u<id>}:profile, a hash with field "nick", expiring after
// profileTTL) in front of PostgreSQL. A change (Update) rewrites the
// Redis copy and this node's entry at once; other nodes see it when their
// entry expires, so a frame names someone by a nickname at most NamesTTL
// old. A user id without a row (a token minted by `onair token` for a user
// never signed up) is named "user <id>", cached like any other name.
// Lookups never fail: when Redis and PostgreSQL are both down, the name
// is "user <id>" (counted as fallback, not cached).
type Names struct {
	s   *Service
	rdb redis.UniversalClient

	mu sync.Mutex
	m  map[uint64]nameEntry
}

type nameEntry struct {
	nick string
	exp  time.Time
}

// profileTTL bounds the Redis copy: a name not looked up for this long
// leaves Redis; the copy is rebuilt from PostgreSQL on the next lookup.
const profileTTL = time.Hour

func newNames(s *Service) *Names {
	return &Names{s: s, rdb: s.cfg.Redis, m: make(map[uint64]nameEntry)}
}

// ProfileKey is a user's Redis hot copy: <prefix>{u<id>}:profile.
func ProfileKey(prefix string, userID uint64) string {
	return prefix + "{u" + strconv.FormatUint(userID, 10) + "}:profile"
}

// Fallback is the name of a user whose nickname cannot be found.
func Fallback(userID uint64) string { return "user " + strconv.FormatUint(userID, 10) }

// Nickname returns userID's nickname.
func (n *Names) Nickname(ctx context.Context, userID uint64) string {
	return n.Nicknames(ctx, []uint64{userID})[userID]
}

// Nicknames returns the nickname of each of ids (one map lookup per id
// cached on this node; one Redis pipeline and at most one PostgreSQL query
// for the rest).
func (n *Names) Nicknames(ctx context.Context, ids []uint64) map[uint64]string {
	out := make(map[uint64]string, len(ids))
	now := time.Now()
	var miss []uint64
	n.mu.Lock()
	for _, id := range ids {
		if e, ok := n.m[id]; ok && now.Before(e.exp) {
			out[id] = e.nick
		} else if _, dup := out[id]; !dup {
			miss = append(miss, id)
		}
	}
	n.mu.Unlock()
	if len(miss) == 0 {
		n.s.m.names.WithLabelValues("local").Add(float64(len(ids)))
		return out
	}
	n.s.m.names.WithLabelValues("local").Add(float64(len(ids) - len(miss)))
	miss = n.fromRedis(ctx, miss, out)
	if len(miss) > 0 {
		n.fromPostgres(ctx, miss, out)
	}
	n.remember(out, now)
	for _, id := range ids {
		if _, ok := out[id]; !ok {
			out[id] = Fallback(id)
			n.s.m.names.WithLabelValues("fallback").Inc()
		}
	}
	return out
}

// fromRedis fills out from the hot copies and returns the ids still
// missing. Each key is read on its own (a pipeline, no multi-key command:
// users live in different cluster slots).
func (n *Names) fromRedis(ctx context.Context, ids []uint64, out map[uint64]string) []uint64 {
	if n.rdb == nil {
		return ids
	}
	pipe := n.rdb.Pipeline()
	cmds := make([]*redis.StringCmd, len(ids))
	for i, id := range ids {
		cmds[i] = pipe.HGet(ctx, ProfileKey(n.s.cfg.Prefix, id), "nick")
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		n.s.m.failures.WithLabelValues("redis").Inc()
		n.s.log.Warn("accounts: cannot read nicknames from Redis; asking PostgreSQL", "users", len(ids), "err", err)
		return ids
	}
	var miss []uint64
	for i, id := range ids {
		if v, err := cmds[i].Result(); err == nil {
			out[id] = v
			n.s.m.names.WithLabelValues("redis").Inc()
		} else {
			miss = append(miss, id)
		}
	}
	return miss
}

// fromPostgres fills out from the users table and writes the hot copies.
func (n *Names) fromPostgres(ctx context.Context, ids []uint64, out map[uint64]string) {
	args := make([]int64, len(ids))
	for i, id := range ids {
		args[i] = int64(id)
	}
	type row struct {
		ID   int64
		Nick string
	}
	rows, err := pgdb.Collect(ctx, n.s.db, func(r pgx.CollectableRow) (row, error) {
		var x row
		err := r.Scan(&x.ID, &x.Nick)
		return x, err
	}, `SELECT id, nickname FROM users WHERE id = ANY($1)`, args)
	if err != nil {
		n.s.m.failures.WithLabelValues("postgres").Inc()
		n.s.log.Warn("accounts: cannot read nicknames from PostgreSQL; naming users by id", "users", len(ids), "err", err)
		return
	}
	found := make(map[uint64]string, len(rows))
	for _, r := range rows {
		found[uint64(r.ID)] = r.Nick
	}
	var pipe redis.Pipeliner
	if n.rdb != nil {
		pipe = n.rdb.Pipeline()
	}
	for _, id := range ids {
		nick, ok := found[id]
		if !ok {
			nick = Fallback(id) // no such user: cached, so a bad id costs one query per TTL
		}
		out[id] = nick
		n.s.m.names.WithLabelValues("postgres").Inc()
		if pipe != nil && ok {
			k := ProfileKey(n.s.cfg.Prefix, id)
			// HSETNX: a change written meanwhile (changed) wins over
			// what this read found before it
			pipe.HSetNX(ctx, k, "nick", nick)
			pipe.Expire(ctx, k, profileTTL)
		}
	}
	if pipe != nil && pipe.Len() > 0 {
		if _, err := pipe.Exec(ctx); err != nil {
			n.s.m.failures.WithLabelValues("redis").Inc()
			n.s.log.Warn("accounts: cannot write nicknames' hot copies", "users", len(found), "err", err)
		}
	}
}

// remember caches out on this node; a full cache is emptied first (a
// simple bound: names are cheap to read again).
func (n *Names) remember(out map[uint64]string, now time.Time) {
	exp := now.Add(n.s.cfg.NamesTTL)
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.m)+len(out) > n.s.cfg.NamesSize {
		clear(n.m)
	}
	for id, nick := range out {
		n.m[id] = nameEntry{nick: nick, exp: exp}
	}
}

// changed records a new nickname: the Redis copy is rewritten (or dropped
// when it cannot be: the next lookup reads PostgreSQL) and this node's
// entry replaced.
func (n *Names) changed(ctx context.Context, userID uint64, nick string) {
	if n.rdb != nil {
		k := ProfileKey(n.s.cfg.Prefix, userID)
		pipe := n.rdb.TxPipeline()
		pipe.HSet(ctx, k, "nick", nick)
		pipe.Expire(ctx, k, profileTTL)
		if _, err := pipe.Exec(ctx); err != nil {
			n.s.m.failures.WithLabelValues("redis").Inc()
			n.s.log.Warn("accounts: cannot rewrite a nickname's hot copy; dropping it", "user", userID, "err", err)
			if err := n.rdb.Del(context.WithoutCancel(ctx), k).Err(); err != nil {
				// the stale copy lives until profileTTL: logged loudly
				n.s.log.Error("accounts: a stale nickname stays in Redis until it expires", "user", userID, "ttl", profileTTL, "err", err)
			}
		}
	}
	n.mu.Lock()
	n.m[userID] = nameEntry{nick: nick, exp: time.Now().Add(n.s.cfg.NamesTTL)}
	n.mu.Unlock()
}
