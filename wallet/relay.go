package wallet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/onair/onair/ingest"
	"github.com/onair/onair/internal/pgdb"
	"github.com/onair/onair/internal/promreg"
)

// Producer takes events to the events topic (ingest.Producer). It returns
// nil only when Kafka acknowledged every event.
type Producer interface {
	Produce(ctx context.Context, evs []ingest.Event) error
}

var _ Producer = (*ingest.Producer)(nil)

// RelayConfig configures NewRelay.
type RelayConfig struct {
	// DB is the ledger. Required.
	DB *pgdb.DB
	// Events is where gift events go. Required.
	Events Producer
	// Batch is the most outbox rows one step relays; 0 = 500.
	Batch int
	// Poll is how long an idle relay waits before looking again; 0 = 20ms.
	Poll time.Duration
	// AfterProduce, when set, runs between the produce and the position
	// update and may fail the step (tests: a crash at the worst moment).
	AfterProduce func() error
	// Registerer receives onair_wallet_relay_* metrics; nil = none.
	Registerer prometheus.Registerer
	// Log receives failures; nil = discard.
	Log *slog.Logger
}

// relayLock is the advisory lock (a transaction's) that makes one relay
// step run at a time across every process: the leader of that step.
const relayLock = 0x0a1a_3001

// Relay takes the outbox's gift events to Kafka in outbox order, exactly
// once downstream. A step, in one transaction holding relayLock: read the
// oldest rows, produce their events, delete the rows and move the position
// row (wallet_relay). A crash (even SIGKILL) after the produce and before
// the commit leaves the rows, which the next step produces again with the
// same event ids ("wt<transfer id>", the same ts): rooms' gift script
// counts a user's event id once per room ({r<id>}:gd claims) and the
// aggregator's dedupe stores it in onair.events once, within their dedupe
// window (hours), far longer than a relay's retry takes.
//
// Rows are taken by id, not by "id > position": a gift's transaction may
// commit after a later id's, and deleting what was relayed never skips it.
type Relay struct {
	cfg RelayConfig
	log *slog.Logger

	relayed  prometheus.Counter
	failures prometheus.Counter
	lag      prometheus.Gauge
}

// NewRelay validates cfg and returns a Relay; Run runs it.
func NewRelay(cfg RelayConfig) (*Relay, error) {
	if cfg.DB == nil || cfg.Events == nil {
		return nil, errors.New("wallet: RelayConfig.DB and Events are required")
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 500
	}
	if cfg.Poll <= 0 {
		cfg.Poll = 20 * time.Millisecond
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	r := &Relay{cfg: cfg, log: cfg.Log,
		relayed: prometheus.NewCounter(prometheus.CounterOpts{Name: "onair_wallet_relay_events_total",
			Help: "Paid gift events the outbox relay produced (a re-produce after a crash counts again)."}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{Name: "onair_wallet_relay_failures_total",
			Help: "Relay steps that failed (PostgreSQL or Kafka); retried."}),
		lag: prometheus.NewGauge(prometheus.GaugeOpts{Name: "onair_wallet_relay_lag_seconds",
			Help: "Age of the oldest outbox row the last step relayed."}),
	}
	if err := counters(cfg.Registerer, &r.relayed, &r.failures); err != nil {
		return nil, err
	}
	var err error
	if r.lag, err = promreg.Register(cfg.Registerer, r.lag); err != nil {
		return nil, err
	}
	return r, nil
}

// Run relays until ctx ends; failures are logged, counted and retried.
func (r *Relay) Run(ctx context.Context) error {
	pollSteps(ctx, r.Step, r.cfg.Batch, r.cfg.Poll, 10*r.cfg.Poll, func(err error) {
		r.failures.Inc()
		r.log.Warn("wallet: relay step failed; retrying", "err", err)
	})
	return nil
}

// Step relays at most Batch outbox rows and returns how many. It relays
// nothing (0, nil) while another process holds the step.
func (r *Relay) Step(ctx context.Context) (int, error) {
	n := 0
	err := r.cfg.DB.Tx(ctx, func(tx pgx.Tx) error {
		n = 0
		var leader bool
		if err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock($1)`, relayLock).Scan(&leader); err != nil || !leader {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT id, transfer_id, user_id, room_id, anchor_id, gift_id, coins, ts
			FROM wallet_outbox ORDER BY id LIMIT $1`, r.cfg.Batch)
		if err != nil {
			return err
		}
		var ids []int64
		var evs []ingest.Event
		for rows.Next() {
			var id, tid, user, room, anchor, gift, coins, ts int64
			if err := rows.Scan(&id, &tid, &user, &room, &anchor, &gift, &coins, &ts); err != nil {
				return err
			}
			ids = append(ids, id)
			evs = append(evs, ingest.Event{Type: ingest.TypeGift, UserID: uint64(user), RoomID: uint64(room),
				AnchorID: uint64(anchor), GiftID: uint64(gift), Value: uint64(coins), TS: ts, EventID: EventIDOf(tid)})
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if len(ids) == 0 {
			return nil
		}
		oldest := evs[0].TS
		if err := r.cfg.Events.Produce(ctx, evs); err != nil {
			return fmt.Errorf("produce %d gift events: %w", len(evs), err)
		}
		r.relayed.Add(float64(len(evs)))
		if r.cfg.AfterProduce != nil {
			if err := r.cfg.AfterProduce(); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, `DELETE FROM wallet_outbox WHERE id = ANY($1)`, ids); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE wallet_relay SET position = greatest(position, $1), relayed = relayed + $2 WHERE name = 'gifts'`,
			ids[len(ids)-1], len(ids)); err != nil {
			return err
		}
		r.lag.Set(time.Since(time.UnixMilli(oldest)).Seconds())
		n = len(ids)
		return nil
	})
	return n, err
}
