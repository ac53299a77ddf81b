package wallet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/onair/onair/internal/pgdb"
	"github.com/onair/onair/internal/refusal"
)

// Config configures New. Every field but DB has a working zero value.
type Config struct {
	// DB is the ledger's PostgreSQL (migrated). Required.
	DB *pgdb.DB
	// Shards is how many sub-accounts an anchor's income and the platform
	// are split over (the hot-anchor remedy); 0 = DefaultShards. Changing
	// it later is safe: balances are sums over whatever shards exist.
	Shards int
	// SharePct is the anchor's share of a gift in percent (floored to the
	// coin; the platform keeps the rest); 0 = DefaultSharePct.
	SharePct int
	// Provider takes recharges' payments; nil = DevProvider (always paid).
	Provider PaymentProvider
	// Registerer receives the onair_wallet_* metrics; nil = none.
	Registerer prometheus.Registerer
	// Log receives failures; nil = discard.
	Log *slog.Logger
}

// Defaults of Config's zero values.
const (
	DefaultShards   = 64
	DefaultSharePct = 50
)

// Wallet is the ledger's API. It is safe for concurrent use.
type Wallet struct {
	cfg Config
	db  *pgdb.DB
	log *slog.Logger
	m   *metrics
}

// New validates cfg and returns a Wallet.
func New(cfg Config) (*Wallet, error) {
	switch {
	case cfg.DB == nil:
		return nil, errors.New("wallet: Config.DB is required")
	case cfg.Shards < 0 || cfg.Shards > 1024:
		return nil, fmt.Errorf("wallet: Config.Shards must be in 0..1024, got %d", cfg.Shards)
	case cfg.SharePct < 0 || cfg.SharePct > 100:
		return nil, fmt.Errorf("wallet: Config.SharePct must be in 0..100, got %d", cfg.SharePct)
	}
	if cfg.Shards == 0 {
		cfg.Shards = DefaultShards
	}
	if cfg.SharePct == 0 {
		cfg.SharePct = DefaultSharePct
	}
	if cfg.Provider == nil {
		cfg.Provider = DevProvider{}
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	return &Wallet{cfg: cfg, db: cfg.DB, log: cfg.Log, m: m}, nil
}

// Split is the documented income rule: of a gift of total coins the anchor
// gets floor(total × sharePct / 100), the platform the rest.
func Split(total int64, sharePct int) (income, platform int64) {
	income = total * int64(sharePct) / 100
	return income, total - income
}

// shard picks the sub-account a paying user's coins go to: a multiplicative
// hash, so consecutive user ids spread over every shard.
func (w *Wallet) shard(user uint64) int16 {
	return int16((user * 0x9E3779B97F4A7C15 >> 32) % uint64(w.cfg.Shards))
}

// Balance is GET /v1/wallet: a user's wallet and income (the sum of its
// income sub-accounts).
type Balance struct {
	Balance int64 `json:"balance"`
	Income  int64 `json:"income"`
}

// Balance returns user's balance and income.
func (w *Wallet) Balance(ctx context.Context, user uint64) (Balance, error) {
	var b Balance
	err := w.db.QueryRow(ctx, `SELECT coalesce(sum(balance) FILTER (WHERE kind = 'wallet'), 0)::bigint,
		coalesce(sum(balance) FILTER (WHERE kind = 'income'), 0)::bigint
		FROM wallet_accounts WHERE kind IN ('wallet', 'income') AND owner = $1`, int64(user)).Scan(&b.Balance, &b.Income)
	if err != nil {
		return b, w.fail("balance", err)
	}
	return b, nil
}

// Entry is one line of a user's ledger. BalanceAfter is the balance of the
// account the entry moved: the wallet, or for gift_income the anchor's
// income sub-account it went to.
type Entry struct {
	ID           int64     `json:"id"`
	Kind         string    `json:"kind"`
	Coins        int64     `json:"coins"`
	BalanceAfter int64     `json:"balance_after"`
	Ref          string    `json:"ref"`
	At           time.Time `json:"at"`
}

// Ledger returns a user's entries (wallet and income) newest first, at
// most limit, older than the cursor (an entry id; 0 = the newest), and the
// cursor of the next page ("" at the end).
func (w *Wallet) Ledger(ctx context.Context, user uint64, limit int, before int64) ([]Entry, string, error) {
	if before <= 0 {
		before = 1<<63 - 1
	}
	es, err := pgdb.Collect(ctx, w.db, pgx.RowToStructByPos[Entry], `SELECT e.id, e.kind, e.coins, e.balance_after, e.ref, e.created_at
		FROM wallet_entries e JOIN wallet_accounts a ON a.id = e.account_id
		WHERE a.kind IN ('wallet', 'income') AND a.owner = $1 AND e.id < $2
		ORDER BY e.id DESC LIMIT $3`, int64(user), before, limit)
	if err != nil {
		return nil, "", w.fail("ledger", err)
	}
	next := ""
	if len(es) == limit {
		next = strconv.FormatInt(es[len(es)-1].ID, 10)
	}
	if es == nil {
		es = []Entry{}
	}
	return es, next, nil
}

// ErrUnavailable wraps a PostgreSQL failure: retry (with the same keys).
var ErrUnavailable = errors.New("wallet: the ledger did not answer")

// fail logs and counts a failure of op and wraps it in ErrUnavailable.
func (w *Wallet) fail(op string, err error) error {
	w.m.failures.WithLabelValues(op).Inc()
	w.log.Warn("wallet: ledger call failed", "op", op, "err", err)
	return fmt.Errorf("%w: %s: %w", ErrUnavailable, op, err)
}

// refuse counts a refusal and returns it.
func (w *Wallet) refuse(reason string, e *refusal.Error) *refusal.Error {
	w.m.refused.WithLabelValues(reason).Inc()
	e.Reason = reason
	return e
}
