package wallet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/onair/onair/internal/chdb"
	"github.com/onair/onair/internal/pgdb"
)

// CopyConfig configures NewCopier.
type CopyConfig struct {
	// DB is the ledger. Required.
	DB *pgdb.DB
	// ClickHouse and Database hold <Database>.ledger (migration 0061).
	// Required.
	ClickHouse driver.Conn
	Database   string
	// Batch is the most entries one block carries; 0 = 100 000.
	Batch int
	// Poll is how often the copier looks for new entries; 0 = 1s.
	Poll time.Duration
	// Registerer receives onair_wallet_copy_* metrics; nil = none.
	Registerer prometheus.Registerer
	// Log receives failures; nil = discard.
	Log *slog.Logger
}

// copyLock is the advisory lock that makes one copy step run at a time.
const copyLock = 0x0a1a_3002

// Copier copies every ledger entry to ClickHouse's <db>.ledger exactly once.
//
// Entry ids are not committed in id order, so a position "id > n" could
// skip an entry whose transaction committed late. Each entry records its
// transaction id (xid8); every transaction older than the snapshot's xmin
// has ended, and no entry can appear later in [previous xmin, xmin). A step
// copies the entries of that window as one ClickHouse block whose rows
// carry the window's end (xid_to), and the next step resumes from
// max(xid_to) in ClickHouse: a block lands whole or not at all, so a crash
// at any instant neither loses nor repeats an entry. A transaction open
// for long holds the copy back (pgdb bounds each to its Timeout).
type Copier struct {
	cfg CopyConfig
	log *slog.Logger

	copied   prometheus.Counter
	failures prometheus.Counter
}

// NewCopier validates cfg and returns a Copier; Run runs it.
func NewCopier(cfg CopyConfig) (*Copier, error) {
	if cfg.DB == nil || cfg.ClickHouse == nil || !chdb.ValidIdent(cfg.Database) {
		return nil, errors.New("wallet: CopyConfig needs DB, ClickHouse and a valid Database")
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 100_000
	}
	if cfg.Poll <= 0 {
		cfg.Poll = time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	c := &Copier{cfg: cfg, log: cfg.Log,
		copied: prometheus.NewCounter(prometheus.CounterOpts{Name: "onair_wallet_copy_entries_total",
			Help: "Ledger entries copied to ClickHouse's ledger table."}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{Name: "onair_wallet_copy_failures_total",
			Help: "Copy steps that failed (PostgreSQL or ClickHouse); retried."}),
	}
	if err := counters(cfg.Registerer, &c.copied, &c.failures); err != nil {
		return nil, err
	}
	return c, nil
}

// Run copies until ctx ends; failures are logged, counted and retried.
func (c *Copier) Run(ctx context.Context) error {
	pollSteps(ctx, c.Step, c.cfg.Batch, c.cfg.Poll, c.cfg.Poll, func(err error) {
		c.failures.Inc()
		c.log.Warn("wallet: ledger copy step failed; retrying", "err", err)
	})
	return nil
}

type copyRow struct {
	id, transfer, account int64
	accountKind           string
	owner                 int64
	kind, transferKind    string
	coins, after          int64
	ref                   string
	at                    time.Time
	xid                   uint64
}

// Step copies the entries of finished transactions not copied yet (at most
// Batch, cut at a transaction) and returns how many. It copies nothing
// while another process holds the step.
func (c *Copier) Step(ctx context.Context) (int, error) {
	n := 0
	err := c.cfg.DB.Tx(ctx, func(tx pgx.Tx) error {
		n = 0
		var leader bool
		if err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock($1)`, copyLock).Scan(&leader); err != nil || !leader {
			return err
		}
		// An INSERT of a leader that died (or gave up at its deadline)
		// after sending its block still lands: the position read while it
		// runs is stale, and copying from it would copy its rows twice.
		if err := c.settle(ctx); err != nil {
			return err
		}
		var from uint64
		if err := c.cfg.ClickHouse.QueryRow(ctx, `SELECT max(xid_to) FROM `+c.cfg.Database+`.ledger`).Scan(&from); err != nil {
			return fmt.Errorf("read the copy's position: %w", err)
		}
		var to uint64
		if err := tx.QueryRow(ctx, `SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint`).Scan(&to); err != nil {
			return err
		}
		if to <= from {
			return nil
		}
		rows, err := c.window(ctx, tx, from, to)
		if err != nil {
			return err
		}
		if len(rows) > c.cfg.Batch { // cut before the transaction that overflows
			to = rows[c.cfg.Batch].xid
			for len(rows) > 0 && rows[len(rows)-1].xid >= to {
				rows = rows[:len(rows)-1]
			}
		}
		if len(rows) == 0 {
			return nil
		}
		if err := c.insert(ctx, rows, to); err != nil {
			return err
		}
		c.copied.Add(float64(len(rows)))
		n = len(rows)
		return nil
	})
	return n, err
}

func (c *Copier) window(ctx context.Context, tx pgx.Tx, from, to uint64) ([]copyRow, error) {
	rs, err := tx.Query(ctx, `SELECT e.id, e.transfer_id, e.account_id, a.kind, a.owner, e.kind, t.kind, e.coins, e.balance_after,
			e.ref, e.created_at, e.xid::text::bigint
		FROM wallet_entries e JOIN wallet_accounts a ON a.id = e.account_id JOIN wallet_transfers t ON t.id = e.transfer_id
		WHERE e.xid >= $1::text::xid8 AND e.xid < $2::text::xid8
		ORDER BY e.xid, e.id LIMIT $3`, strconv.FormatUint(from, 10), strconv.FormatUint(to, 10), c.cfg.Batch+1)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []copyRow
	for rs.Next() {
		var r copyRow
		var xid int64
		if err := rs.Scan(&r.id, &r.transfer, &r.account, &r.accountKind, &r.owner, &r.kind, &r.transferKind, &r.coins, &r.after, &r.ref, &r.at, &xid); err != nil {
			return nil, err
		}
		r.xid = uint64(xid)
		out = append(out, r)
	}
	return out, rs.Err()
}

// ledgerQueryPrefix starts the query_id of every ledger INSERT, so that
// settle can see one still running on the server.
const ledgerQueryPrefix = "onair-ledger-"

var ledgerQuerySeq atomic.Uint64

// settle waits until ClickHouse runs no ledger INSERT (ctx bounds it).
func (c *Copier) settle(ctx context.Context) error {
	for {
		var n uint64
		err := c.cfg.ClickHouse.QueryRow(ctx, `SELECT count() FROM system.processes WHERE startsWith(query_id, '`+ledgerQueryPrefix+`')`).Scan(&n)
		if err != nil {
			return fmt.Errorf("cannot tell whether a ledger INSERT still runs: %w", err)
		}
		if n == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("a ledger INSERT still runs: %w", ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (c *Copier) insert(ctx context.Context, rows []copyRow, to uint64) error {
	ctx = clickhouse.Context(ctx, clickhouse.WithQueryID(fmt.Sprintf("%s%d-%d", ledgerQueryPrefix, os.Getpid(), ledgerQuerySeq.Add(1))))
	b, err := c.cfg.ClickHouse.PrepareBatch(ctx, `INSERT INTO `+c.cfg.Database+`.ledger (entry_id, transfer_id, account_id, account_kind, owner,
		kind, transfer_kind, coins, balance_after, ref, room_id, at, xid_to) VALUES`)
	if err != nil {
		return err
	}
	for _, r := range rows {
		if err := b.Append(uint64(r.id), uint64(r.transfer), uint64(r.account), r.accountKind, uint64(r.owner),
			r.kind, r.transferKind, r.coins, r.after, r.ref, roomOf(r.ref), r.at, to); err != nil {
			_ = b.Abort()
			return err
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("insert %d ledger entries into ClickHouse: %w", len(rows), err)
	}
	return nil
}

// roomOf reads the room of a gift's ref ("room:5 gift:2 x1"); 0 if none.
func roomOf(ref string) uint64 {
	s, ok := strings.CutPrefix(ref, "room:")
	if !ok {
		return 0
	}
	s, _, _ = strings.Cut(s, " ")
	n, _ := strconv.ParseUint(s, 10, 64)
	return n
}
