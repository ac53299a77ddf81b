package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/onair/onair/history"
	"github.com/onair/onair/internal/chdb"
	"github.com/onair/onair/internal/kafka"
	"github.com/onair/onair/recommend"
	"github.com/onair/onair/rooms"
)

// UserTables are the tables of the ClickHouse database that hold rows of a
// user (a user_id column), which an erasure deletes with one ALTER TABLE
// ... DELETE mutation each. dau_daily is not among them: it holds only
// uniqState sketches per day and business line, from which no user can be
// read (and none removed). history_ops keeps the erasure's own "clear" row
// (history.Store.Erase), written after its mutation.
var UserTables = []string{"events", "progress", "history_ops", "user_daily", "user_item_daily", "user_affinity", "room_gifts_daily"}

// EraseConfig configures an Eraser.
type EraseConfig struct {
	// ClickHouse is the connection. Required.
	ClickHouse driver.Conn
	// Database holds onair's tables; "" = "onair".
	Database string
	// Topic is the events topic whose resume points are kept; "" =
	// kafka.TopicEvents.
	Topic string
	// History erases the user's Redis keys of history. Required.
	History *history.Store
	// Rooms removes the user from room rankings and recent danmaku; nil =
	// rooms are left alone.
	Rooms *rooms.Board
	// Accounts drops the person from their account (phone, nickname,
	// sessions; accounts.Service.Erase); nil = no accounts on this node.
	Accounts interface {
		Erase(ctx context.Context, userID uint64) error
	}
	// Redis and Prefix name radio's listener keys (recommend.ListenerKeys),
	// deleted whether or not this node runs radio. Redis is required.
	Redis  redis.UniversalClient
	Prefix string
	// Registerer receives the onair_lifecycle_* metrics; nil = none.
	Registerer prometheus.Registerer
	// Log receives every erasure and every failure; nil = discard.
	Log *slog.Logger
	// Now is the clock of the erasure time; nil = time.Now.
	Now func() time.Time
}

// Eraser removes users from everything onair keeps.
type Eraser struct {
	cfg EraseConfig
	m   *metrics
}

// NewEraser validates cfg and returns an Eraser.
func NewEraser(cfg EraseConfig) (*Eraser, error) {
	switch {
	case cfg.ClickHouse == nil:
		return nil, errors.New("lifecycle: EraseConfig.ClickHouse is required")
	case cfg.History == nil:
		return nil, errors.New("lifecycle: EraseConfig.History is required")
	case cfg.Redis == nil:
		return nil, errors.New("lifecycle: EraseConfig.Redis is required")
	}
	if cfg.Database == "" {
		cfg.Database = "onair"
	}
	if !chdb.ValidIdent(cfg.Database) {
		return nil, fmt.Errorf("lifecycle: invalid database name %q", cfg.Database)
	}
	if cfg.Topic == "" {
		cfg.Topic = kafka.TopicEvents
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, fmt.Errorf("lifecycle: register metrics: %w", err)
	}
	return &Eraser{cfg: cfg, m: m}, nil
}

// Erasure is what an erasure did; the reply of the erase endpoint. It is
// the same for every call about one user, so a retry reads as the first.
type Erasure struct {
	UserID uint64 `json:"user_id"`
	// Status is "erasing": Redis no longer has the user, and the
	// ClickHouse mutations are submitted; system.mutations (is_done) shows
	// when they have rewritten every part.
	Status string `json:"status"`
	// Tables are the ClickHouse tables whose rows of the user are deleted.
	Tables []string `json:"tables"`
}

// Erase removes user from ClickHouse (a DELETE mutation on each of
// UserTables), from history's and radio's Redis keys and from the rankings
// and recent danmaku of the rooms ClickHouse says the user gave gifts or
// sent danmaku in, then writes an audit row to onair.erasures. by is the
// admin who asked. The order matters: the rooms are read before the rows
// go; the resume points are kept before rows of events go; history's clear
// row is written after history_ops' mutation, which therefore spares it.
// Every step is idempotent, so a failed erasure is retried whole.
func (e *Eraser) Erase(ctx context.Context, user, by uint64) (Erasure, error) {
	out := Erasure{UserID: user, Status: "erasing", Tables: UserTables}
	now := e.cfg.Now()
	roomIDs, err := e.roomsOf(ctx, user)
	if err != nil {
		return out, e.fail("rooms", user, err)
	}
	if err := keepResumePoints(ctx, e.cfg.ClickHouse, e.cfg.Database, e.cfg.Topic); err != nil {
		return out, e.fail("resume_points", user, err)
	}
	for _, t := range UserTables {
		q := fmt.Sprintf("ALTER TABLE %s.%s DELETE WHERE user_id = %d", e.cfg.Database, t, user)
		if err := e.cfg.ClickHouse.Exec(ctx, q); err != nil {
			return out, e.fail("mutation", user, fmt.Errorf("%s: %w", t, err))
		}
	}
	if err := e.cfg.History.Erase(ctx, user, now); err != nil {
		return out, e.fail("history", user, err)
	}
	if err := e.cfg.Redis.Del(ctx, recommend.ListenerKeys(e.cfg.Prefix, user)...).Err(); err != nil {
		return out, e.fail("radio", user, fmt.Errorf("cannot delete listener keys of user %d: %w", user, err))
	}
	if e.cfg.Rooms != nil && len(roomIDs) > 0 {
		if err := e.cfg.Rooms.EraseUser(ctx, user, roomIDs); err != nil {
			return out, e.fail("rooms", user, err)
		}
	}
	if e.cfg.Accounts != nil {
		if err := e.cfg.Accounts.Erase(ctx, user); err != nil {
			return out, e.fail("account", user, err)
		}
	}
	if err := e.audit(ctx, user, by, now, roomIDs); err != nil {
		return out, e.fail("audit", user, err)
	}
	e.m.erasures.Inc()
	e.cfg.Log.Info("user erased", "user", user, "by", by, "rooms", len(roomIDs), "tables", len(UserTables))
	return out, nil
}

func (e *Eraser) fail(step string, user uint64, err error) error {
	e.m.failures.WithLabelValues("erase_" + step).Inc()
	e.cfg.Log.Error("erasure failed; retry it (every step is idempotent)", "user", user, "step", step, "err", err)
	return fmt.Errorf("erase user %d: %s: %w", user, step, err)
}

// roomsOf lists the rooms where user gave gifts or sent danmaku, from the
// events still held and the gift rollup (which outlives nothing, but costs
// one narrow read).
func (e *Eraser) roomsOf(ctx context.Context, user uint64) ([]uint64, error) {
	db := e.cfg.Database
	q := fmt.Sprintf("SELECT DISTINCT room_id FROM (SELECT room_id FROM %s.events WHERE user_id = %d AND room_id != 0 "+
		"UNION ALL SELECT room_id FROM %s.room_gifts_daily WHERE user_id = %d)", db, user, db, user)
	rows, err := e.cfg.ClickHouse.Query(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("cannot list the rooms of user %d: %w", user, err)
	}
	defer rows.Close()
	var out []uint64
	for rows.Next() {
		var r uint64
		if err := rows.Scan(&r); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

func (e *Eraser) audit(ctx context.Context, user, by uint64, now time.Time, roomIDs []uint64) error {
	b, err := e.cfg.ClickHouse.PrepareBatch(ctx, "INSERT INTO "+e.cfg.Database+".erasures (user_id, requested_by, at, tables, rooms)")
	if err != nil {
		return fmt.Errorf("cannot write the audit row: %w", err)
	}
	if roomIDs == nil {
		roomIDs = []uint64{}
	}
	if err := b.Append(user, by, now, UserTables, roomIDs); err != nil {
		_ = b.Abort()
		return fmt.Errorf("cannot write the audit row: %w", err)
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("cannot write the audit row: %w", err)
	}
	return nil
}
