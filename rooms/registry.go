package rooms

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/onair/onair/internal/idseg"
	"github.com/onair/onair/internal/pgdb"
	"github.com/onair/onair/internal/refusal"
	"github.com/onair/onair/rooms/wire"
)

// Notifier sends a frame to one user's personal channel (push implements
// it); an error means the frame was not delivered.
type Notifier = wire.Notifier

// RegistryConfig configures a Registry. Zero values mean the documented
// defaults.
type RegistryConfig struct {
	// DB holds anchors, rooms and PKs (the system of record). Required.
	DB *pgdb.DB
	// Board is the hot copy in Redis the registry writes after each change
	// and rebuilds after a Redis loss. Required.
	Board *Board
	// Names names anchors in replies; nil = every anchor_nickname is "".
	Names Names
	// Notifier takes pk_invite frames to the invited anchor; nil = no
	// notice (the invitation still stands; GET /v1/pk/{id} shows it).
	Notifier Notifier
	// Streams makes play_url and push_url; a zero value makes none.
	Streams StreamURLs
	// InviteTTL is how long a PK invitation may be accepted; 0 = 30 s.
	InviteTTL time.Duration
	// Reconcile is how often Run checks that Redis still holds the hot
	// copy (rebuilding it when not) and records decided PKs; 0 = 1 s.
	Reconcile time.Duration
	// MaxReason bounds an anchor application's reason, in characters;
	// 0 = 500.
	MaxReason int
	// Log receives logs; nil = the Board's.
	Log *slog.Logger
	// Now is the clock; nil = time.Now.
	Now func() time.Time
}

// DefaultInviteTTL is RegistryConfig.InviteTTL's default (api.md: 30 s).
const DefaultInviteTTL = 30 * time.Second

// Registry is the system of record of anchors, rooms and PKs
// (PostgreSQL) and the one writer of rooms' hot copy in Redis: it decides
// who may do what with a room, commits it, then copies it to the Board.
// It is safe for concurrent use.
type Registry struct {
	cfg   RegistryConfig
	db    *pgdb.DB
	b     *Board
	ids   *idseg.Allocator
	log   *slog.Logger
	dirty atomic.Bool // a hot-copy write failed: rebuild on the next tick
}

// NewRegistry validates cfg and returns a Registry; it creates the "rooms"
// id sequence when missing.
func NewRegistry(ctx context.Context, cfg RegistryConfig) (*Registry, error) {
	switch {
	case cfg.DB == nil:
		return nil, errors.New("rooms: RegistryConfig.DB is required")
	case cfg.Board == nil:
		return nil, errors.New("rooms: RegistryConfig.Board is required")
	case cfg.MaxReason < 0:
		return nil, fmt.Errorf("rooms: RegistryConfig.MaxReason %d is negative", cfg.MaxReason)
	}
	if cfg.InviteTTL <= 0 {
		cfg.InviteTTL = DefaultInviteTTL
	}
	if cfg.Reconcile <= 0 {
		cfg.Reconcile = time.Second
	}
	if cfg.MaxReason == 0 {
		cfg.MaxReason = 500
	}
	if cfg.Log == nil {
		cfg.Log = cfg.Board.log
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	ids, err := idseg.New(ctx, idseg.Config{DB: cfg.DB, Name: "rooms", Step: 100, Log: cfg.Log})
	if err != nil {
		return nil, err
	}
	return &Registry{cfg: cfg, db: cfg.DB, b: cfg.Board, ids: ids, log: cfg.Log}, nil
}

func (r *Registry) nowMs() int64 { return r.cfg.Now().UnixMilli() }

// Run keeps the hot copy until ctx ends: every Reconcile it checks the
// registry's sentinel key in Redis and, when it is gone (Redis lost its
// data) or a hot-copy write failed, rebuilds every open room and running
// PK from PostgreSQL; then it records the PKs Redis decided (a winner, or
// their time over) as ended.
func (r *Registry) Run(ctx context.Context) {
	t := time.NewTicker(r.cfg.Reconcile)
	defer t.Stop()
	for {
		r.reconcile(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// reconcile is one tick of Run; failures are logged, counted and tried
// again on the next tick.
func (r *Registry) reconcile(ctx context.Context) {
	if err := r.keepHotCopy(ctx); err != nil && ctx.Err() == nil {
		r.b.m.failures.WithLabelValues("rebuild_rooms").Inc()
		r.log.Warn("cannot rebuild the rooms' hot copy; trying again", "err", err)
	}
	if err := r.settlePKs(ctx); err != nil && ctx.Err() == nil {
		r.b.m.failures.WithLabelValues("settle_pk").Inc()
		r.log.Warn("cannot record decided PKs; trying again", "err", err)
	}
}

// sentinelKey is set once the hot copy is complete; a Redis loss takes it
// with everything else. Hash-tagged like the live index ({rooms}).
func (r *Registry) sentinelKey() string { return r.b.cfg.Prefix + "{rooms}:registry" }

// keepHotCopy rebuilds the hot copy when the sentinel is missing or a
// write failed, then sets the sentinel.
func (r *Registry) keepHotCopy(ctx context.Context) error {
	n, err := r.b.rdb.Exists(ctx, r.sentinelKey()).Result()
	if err != nil {
		return err
	}
	if n == 1 && !r.dirty.Load() {
		return nil
	}
	r.dirty.Store(false)
	t0 := time.Now()
	rooms, pks, err := r.rebuild(ctx)
	if err != nil {
		r.dirty.Store(true)
		return err
	}
	if err := r.b.rdb.Set(ctx, r.sentinelKey(), r.nowMs(), 0).Err(); err != nil {
		r.dirty.Store(true)
		return err
	}
	r.b.m.registryRebuilds.Inc()
	r.log.Info("rebuilt the rooms' hot copy from PostgreSQL", "open_rooms", rooms, "running_pks", pks,
		"sentinel_was_there", n == 1, "took", time.Since(t0))
	return nil
}

// rebuild writes every open room and running PK of PostgreSQL into Redis.
// Writes carry the room's version, so a room closed meanwhile stays closed.
func (r *Registry) rebuild(ctx context.Context) (rooms, pks int, err error) {
	open, err := pgdb.Collect(ctx, r.db, pgx.RowToStructByPos[roomRow], selectRoom+` WHERE r.status = 'open'`)
	if err != nil {
		return 0, 0, err
	}
	for _, row := range open {
		if _, err := r.b.putRoom(ctx, row.state(), quietly); err != nil {
			return 0, 0, err
		}
	}
	running, err := pgdb.Collect(ctx, r.db, pgx.RowToStructByPos[pkRow], selectPK+` WHERE status = 'running' AND ends_ms > $1`, r.nowMs())
	if err != nil {
		return 0, 0, err
	}
	for _, p := range running {
		if err := r.b.RestorePK(ctx, p.state()); err != nil {
			return 0, 0, err
		}
	}
	return len(open), len(running), nil
}

// pgFail logs and counts a PostgreSQL failure and returns it as unavailable.
func (r *Registry) pgFail(what string, err error) error {
	if _, ok := refusal.As(err); ok {
		return err
	}
	r.b.m.failures.WithLabelValues("postgres").Inc()
	r.log.Warn("PostgreSQL failed", "what", what, "err", err)
	return unavailable(what, err)
}

// hotFail logs and counts a failed hot-copy write after a committed change:
// the next tick of Run rebuilds, and the caller may retry (writes are
// idempotent).
func (r *Registry) hotFail(room uint64, err error) error {
	r.dirty.Store(true)
	r.log.Warn("room saved in PostgreSQL but not in Redis; rebuilding on the next tick", "room", room, "err", err)
	return err
}

func (r *Registry) nickname(ctx context.Context, uid uint64) string {
	if r.cfg.Names == nil || uid == 0 {
		return ""
	}
	return r.cfg.Names.Nickname(ctx, uid)
}
