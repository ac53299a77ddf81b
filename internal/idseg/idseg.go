// Package idseg allocates ids from segments kept in PostgreSQL (the
// "segment" allocator of Meituan's Leaf): a process takes a block of ids
// [lo, hi) in one UPDATE and hands them out from memory; when a fifth of
// its block is left it fetches the next block in the background, so a
// caller waits for PostgreSQL only when a block runs out faster than one
// round trip. Ids are unique across processes and restarts (a block is
// never handed out twice: the UPDATE moves the sequence first), increase
// within a process, and have gaps where a process stopped with ids left.
package idseg

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/onair/onair/internal/pgdb"
)

// Config configures New.
type Config struct {
	// DB holds the id_segments table. Required.
	DB *pgdb.DB
	// Name names the sequence ("users", "rooms"). Required.
	Name string
	// Start is the first id of a new sequence; 0 means 1.
	Start int64
	// Step is the size of a block; 0 means 1000. The first process to
	// create the sequence sets it.
	Step int
	// Log receives failed background fetches; nil discards them.
	Log *slog.Logger
}

// Allocator hands out the ids of one sequence. It is safe for concurrent use.
type Allocator struct {
	db   *pgdb.DB
	name string
	log  *slog.Logger

	mu       sync.Mutex
	cur, end int64         // the block in use: next id, end (exclusive)
	spare    *block        // the next block, fetched ahead
	inflight chan struct{} // closed when the fetch ahead ends
	low      int64         // fetch ahead when fewer ids than this are left
}

type block struct{ lo, hi int64 }

// New creates the sequence when it does not exist.
func New(ctx context.Context, cfg Config) (*Allocator, error) {
	if cfg.DB == nil || cfg.Name == "" {
		return nil, fmt.Errorf("idseg: Config.DB and Config.Name are required")
	}
	start, step := max(cfg.Start, 1), cfg.Step
	if step <= 0 {
		step = 1000
	}
	_, err := cfg.DB.Exec(ctx, `INSERT INTO id_segments (name, next_id, step) VALUES ($1, $2, $3)
		ON CONFLICT (name) DO NOTHING`, cfg.Name, start, step)
	if err != nil {
		return nil, fmt.Errorf("cannot create the id sequence %q: %w", cfg.Name, err)
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Allocator{db: cfg.DB, name: cfg.Name, log: log, low: max(int64(step)/5, 1)}, nil
}

// Next returns a new id.
func (a *Allocator) Next(ctx context.Context) (int64, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for a.cur >= a.end {
		switch {
		case a.spare != nil:
			a.cur, a.end, a.spare = a.spare.lo, a.spare.hi, nil
		case a.inflight != nil:
			wait := a.inflight
			a.mu.Unlock()
			select {
			case <-wait:
			case <-ctx.Done():
			}
			a.mu.Lock()
			if err := ctx.Err(); err != nil {
				return 0, err
			}
		default:
			b, err := a.fetch(ctx)
			if err != nil {
				return 0, err
			}
			a.cur, a.end = b.lo, b.hi
		}
	}
	id := a.cur
	a.cur++
	if a.end-a.cur < a.low && a.spare == nil && a.inflight == nil {
		a.inflight = make(chan struct{})
		go a.fetchAhead(a.inflight)
	}
	return id, nil
}

func (a *Allocator) fetchAhead(done chan struct{}) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	b, err := a.fetch(ctx)
	a.mu.Lock()
	defer a.mu.Unlock()
	if err != nil {
		// the next Next that runs out fetches again, and returns the error
		a.log.Warn("cannot fetch the next block of ids ahead", "sequence", a.name, "err", err)
	} else {
		a.spare = &b
	}
	a.inflight = nil
	close(done)
}

// fetch takes the next block: the UPDATE moves the sequence past it before
// anyone can read it, so no two processes ever get the same block.
func (a *Allocator) fetch(ctx context.Context) (block, error) {
	var b block
	err := a.db.QueryRow(ctx, `UPDATE id_segments SET next_id = next_id + step WHERE name = $1
		RETURNING next_id - step, next_id`, a.name).Scan(&b.lo, &b.hi)
	if err != nil {
		return b, fmt.Errorf("cannot take a block of %s ids: %w", a.name, err)
	}
	return b, nil
}
