// Package nodeid leases node ids from PostgreSQL, so that no two live
// processes stamp server-assigned event ids with the same node id (pid mod
// 1024, the old default, collided in every container, whose pid is 1).
//
// A lease lasts TTL and is renewed every TTL/30. A process that has not
// renewed for 4/5 of TTL (PostgreSQL unreachable that long) stops using
// the id before anyone else can take it: Run returns ErrLost and the node
// stops. A lease is released at a clean stop; a killed process's id is
// free again TTL after its last renewal.
package nodeid

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/onair/onair/internal/pgdb"
)

// Max is one more than the highest node id (ingest's ids have 10 bits for it).
const Max = 1024

// DefaultTTL is how long a lease outlives its holder's last renewal.
const DefaultTTL = 5 * time.Minute

// ErrClash is returned by Acquire when the requested id is held by another
// live process, or when every id is.
var ErrClash = errors.New("node id held by another process")

// ErrLost is returned by Run when the lease can no longer be trusted: it
// was taken over, or not renewed for 4/5 of its TTL.
var ErrLost = errors.New("node id lease lost")

// Lease is a held node id.
type Lease struct {
	db     *pgdb.DB
	id     int
	holder string
	ttl    time.Duration
	log    *slog.Logger
}

// Acquire leases node id want, or any free id when want is negative. ttl
// 0 means DefaultTTL.
func Acquire(ctx context.Context, db *pgdb.DB, want int, ttl time.Duration, log *slog.Logger) (*Lease, error) {
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	host, _ := os.Hostname()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	l := &Lease{db: db, holder: fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(b)), ttl: ttl, log: log}
	if want >= Max {
		return nil, fmt.Errorf("node id %d out of range [0,%d)", want, Max)
	}
	// Two processes may pick the same free id at once: the upsert's WHERE
	// lets one of them have it, and the other picks again.
	for range 64 {
		var id int
		err := db.QueryRow(ctx, `
			WITH cand AS (
				SELECT g AS id FROM generate_series(0, $4 - 1) AS g
				WHERE ($1 < 0 OR g = $1)
				  AND NOT EXISTS (SELECT 1 FROM node_leases WHERE node_id = g AND expires_at >= now())
				ORDER BY random() LIMIT 1)
			INSERT INTO node_leases (node_id, holder, expires_at)
			SELECT id, $2, now() + $3 * interval '1 millisecond' FROM cand
			ON CONFLICT (node_id) DO UPDATE SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at
			WHERE node_leases.expires_at < now()
			RETURNING node_id`, want, l.holder, ttl.Milliseconds(), Max).Scan(&id)
		if err == nil {
			l.id = id
			return l, nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return nil, fmt.Errorf("cannot lease a node id: %w", err)
		}
		if want >= 0 {
			return nil, fmt.Errorf("%w: node id %d (another onair process uses it; pick another --node-id or leave it unset)", ErrClash, want)
		}
	}
	return nil, fmt.Errorf("%w: no node id free after 64 tries (1024 live or recently killed processes?)", ErrClash)
}

// ID is the leased node id.
func (l *Lease) ID() int { return l.id }

// Run renews the lease until ctx ends, then releases it. It returns
// ErrLost (wrapped) when the id must no longer be used.
func (l *Lease) Run(ctx context.Context) error {
	every := l.ttl / 30
	renewed := time.Now()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			l.release()
			return nil
		case <-t.C:
		}
		started := time.Now()
		err := l.renew(ctx)
		switch {
		case errors.Is(err, ErrLost):
			return err
		case err == nil:
			renewed = started
		case time.Since(renewed) > l.ttl*4/5:
			return fmt.Errorf("%w: node id %d not renewed for %s (PostgreSQL unreachable): %v", ErrLost, l.id, time.Since(renewed).Round(time.Second), err)
		default:
			l.log.Warn("cannot renew the node id lease; retrying", "node_id", l.id, "since", time.Since(renewed).Round(time.Second), "err", err)
		}
	}
}

func (l *Lease) renew(ctx context.Context) error {
	tag, err := l.db.Exec(ctx, `UPDATE node_leases SET expires_at = now() + $3 * interval '1 millisecond'
		WHERE node_id = $1 AND holder = $2`, l.id, l.holder, l.ttl.Milliseconds())
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("%w: node id %d is held by another process now", ErrLost, l.id)
	}
	return nil
}

func (l *Lease) release() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := l.db.Exec(ctx, "DELETE FROM node_leases WHERE node_id = $1 AND holder = $2", l.id, l.holder); err != nil {
		l.log.Warn("cannot release the node id lease; it expires by itself", "node_id", l.id, "err", err)
	}
}
