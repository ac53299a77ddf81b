package history

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Epoch names one lifetime of the Redis data: the sentinel key
// <prefix>epoch is created once (SET NX) and lives as long as the data.
// When Redis loses its data (FLUSHALL, a restart without persistence or
// with a wiped data directory, a failover to an empty replica) the key is
// gone with it; the next reader that needs it creates a new one, so a
// changed Token tells whoever remembers the old one that everything
// written before may be gone.
//
// The key is not hash-tagged: on Redis Cluster it detects the loss of the
// shard that holds it only (see DESIGN.md, known limits).
type Epoch struct {
	// Token is random and new for every lifetime.
	Token string
	// LostAt is when this lifetime began (Unix ms) if it began after a loss:
	// ClickHouse already held events then, so Redis had held state that is
	// now gone. 0 for a first start, when there was nothing to lose.
	LostAt int64
}

// epochKey is the sentinel key.
func (s *Store) epochKey() string { return s.prefix + "epoch" }

// Epoch returns the current lifetime of the Redis data, creating it when
// the sentinel is missing. Creating it asks ClickHouse whether onair ever
// stored anything (a first start) or Redis lost it: so it is for the
// aggregator and for startup, never for the request path.
func (s *Store) Epoch(ctx context.Context) (Epoch, error) {
	if ep, ok, err := s.readEpoch(ctx); err != nil || ok {
		return ep, err
	}
	lostAt := int64(0)
	if s.ch != nil {
		held, err := s.everStored(ctx)
		if err != nil {
			return Epoch{}, err
		}
		if held {
			lostAt = time.Now().UnixMilli()
		}
	}
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return Epoch{}, err
	}
	val := hex.EncodeToString(b[:]) + "," + strconv.FormatInt(lostAt, 10)
	if err := s.rdb.SetNX(ctx, s.epochKey(), val, 0).Err(); err != nil {
		return Epoch{}, fmt.Errorf("history: cannot create the Redis epoch: %w", err)
	}
	// whoever won SET NX, the key now names the lifetime
	ep, ok, err := s.readEpoch(ctx)
	if err == nil && !ok {
		err = errors.New("history: the Redis epoch vanished right after it was set")
	}
	if err == nil && ep.LostAt > 0 && strings.HasPrefix(val, ep.Token) {
		s.log.Warn("Redis lost its data; new epoch", "epoch", ep.Token, "lost_at", time.UnixMilli(ep.LostAt))
	}
	return ep, err
}

// readEpoch reads the sentinel; ok is false when it is missing.
func (s *Store) readEpoch(ctx context.Context) (ep Epoch, ok bool, err error) {
	v, err := s.rdb.Get(ctx, s.epochKey()).Result()
	if errors.Is(err, redis.Nil) {
		return Epoch{}, false, nil
	}
	if err != nil {
		return Epoch{}, false, fmt.Errorf("history: cannot read the Redis epoch: %w", err)
	}
	tok, at, found := strings.Cut(v, ",")
	n, perr := strconv.ParseInt(at, 10, 64)
	if !found || perr != nil || tok == "" {
		return Epoch{}, false, fmt.Errorf("history: malformed Redis epoch %q", v)
	}
	return Epoch{Token: tok, LostAt: n}, true, nil
}

// everStored reports whether ClickHouse holds any event: then a Redis
// without the sentinel has lost data rather than never had any.
func (s *Store) everStored(ctx context.Context) (bool, error) {
	rows, err := s.ch.Query(ctx, "SELECT 1 FROM "+s.db+".events LIMIT 1")
	if err != nil {
		return false, fmt.Errorf("history: cannot check ClickHouse for events: %w", err)
	}
	defer rows.Close()
	held := rows.Next()
	return held, rows.Err()
}

// firstAfterLoss decides first_today for a user whose day marker is
// missing: a new user, or one whose marker Redis lost. If the current
// lifetime began today after a loss, the user may have been granted
// first_today earlier today, before it: say false (a missed bonus rather
// than a second one). Without the sentinel the loss is not handled yet:
// false too, unless Redis is the only store (no ClickHouse), where
// nothing outlives it anyway.
func (s *Store) firstAfterLoss(ctx context.Context, day string) (bool, error) {
	ep, ok, err := s.readEpoch(ctx)
	if err != nil {
		return false, err
	}
	if !ok {
		return s.ch == nil, nil
	}
	return ep.LostAt == 0 || time.UnixMilli(ep.LostAt).In(s.loc).Format("20060102") != day, nil
}
