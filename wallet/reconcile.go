package wallet

import (
	"context"
	"fmt"
	"strconv"

	"github.com/onair/onair/internal/pgdb"
)

// ReconcileConfig configures Reconcile.
type ReconcileConfig struct {
	// Copy, when set, is the ledger's analytics copy and the gift events
	// it must match (ClickHouse); nil = the PostgreSQL checks only.
	Copy LedgerCopy
}

// LedgerCopy is the analytics side Reconcile compares with PostgreSQL.
type LedgerCopy interface {
	// Totals returns the copy's entries per transfer kind (count, and
	// coins' sum with debits negative), the PostgreSQL transaction id the
	// copy is complete below (0 = it holds no entries), and the count and
	// coins of the paid gift events (event id "wt<transfer id>").
	Totals(ctx context.Context) (CopyTotals, error)
}

// CopyTotals is what LedgerCopy.Totals reads.
type CopyTotals struct {
	Entries    map[string][2]int64
	UpTo       uint64
	GiftEvents [2]int64
}

// Report is Reconcile's result: one line per difference found.
type Report struct {
	Accounts, Entries, Transfers int64
	Differences                  []string
}

// Reconcile checks that no coin was created or lost: every account's
// entries sum to its balance, all balances sum to zero (payments is minus
// what came in), every transfer has its two entries, and, with a Copy,
// that the copy holds the same entries and one gift event per paid gift.
func Reconcile(ctx context.Context, db *pgdb.DB, cfg ReconcileConfig) (Report, error) {
	var r Report
	rows, err := db.Pool().Query(ctx, `SELECT a.id, a.kind, a.owner, a.shard, a.balance, coalesce(e.sum, 0)::bigint, coalesce(e.n, 0)
		FROM wallet_accounts a LEFT JOIN (SELECT account_id, sum(coins) AS sum, count(*) AS n FROM wallet_entries GROUP BY account_id) e
		ON e.account_id = a.id WHERE a.balance <> coalesce(e.sum, 0)`)
	if err != nil {
		return r, err
	}
	for rows.Next() {
		var id, owner, bal, sum, n int64
		var kind string
		var shard int16
		if err := rows.Scan(&id, &kind, &owner, &shard, &bal, &sum, &n); err != nil {
			return r, err
		}
		r.Differences = append(r.Differences, fmt.Sprintf("account %d (%s of %d, shard %d): balance %d, its %d entries sum to %d", id, kind, owner, shard, bal, n, sum))
	}
	if err := rows.Err(); err != nil {
		return r, err
	}
	var total, entrySum int64
	if err := db.Pool().QueryRow(ctx, `SELECT (SELECT count(*) FROM wallet_accounts), (SELECT coalesce(sum(balance), 0)::bigint FROM wallet_accounts),
		(SELECT count(*) FROM wallet_entries), (SELECT coalesce(sum(coins), 0)::bigint FROM wallet_entries), (SELECT count(*) FROM wallet_transfers)`).
		Scan(&r.Accounts, &total, &r.Entries, &entrySum, &r.Transfers); err != nil {
		return r, err
	}
	if total != 0 {
		r.Differences = append(r.Differences, fmt.Sprintf("all accounts sum to %d, not 0", total))
	}
	if entrySum != 0 {
		r.Differences = append(r.Differences, fmt.Sprintf("all entries sum to %d, not 0", entrySum))
	}
	if r.Entries != 2*r.Transfers {
		r.Differences = append(r.Differences, fmt.Sprintf("%d entries for %d transfers, want 2 per transfer", r.Entries, r.Transfers))
	}
	if cfg.Copy != nil {
		if err := compareCopy(ctx, db, cfg.Copy, &r); err != nil {
			return r, err
		}
	}
	return r, nil
}

func compareCopy(ctx context.Context, db *pgdb.DB, c LedgerCopy, r *Report) error {
	ct, err := c.Totals(ctx)
	if err != nil {
		return err
	}
	// Only entries of transactions the copy has reached: later ones are on
	// their way (wallet/copy.go), not missing.
	rows, err := db.Pool().Query(ctx, `SELECT t.kind, count(*), coalesce(sum(e.coins), 0)::bigint
		FROM wallet_entries e JOIN wallet_transfers t ON t.id = e.transfer_id
		WHERE e.xid < $1::text::xid8 GROUP BY t.kind`, strconv.FormatUint(ct.UpTo, 10))
	if err != nil {
		return err
	}
	want := map[string][2]int64{}
	for rows.Next() {
		var k string
		var n, s int64
		if err := rows.Scan(&k, &n, &s); err != nil {
			return err
		}
		want[k] = [2]int64{n, s}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for k, v := range want {
		if ct.Entries[k] != v {
			r.Differences = append(r.Differences, fmt.Sprintf("kind %s: PostgreSQL has %d entries summing to %d, ClickHouse's ledger %d summing to %d", k, v[0], v[1], ct.Entries[k][0], ct.Entries[k][1]))
		}
	}
	for k, v := range ct.Entries {
		if _, ok := want[k]; !ok {
			r.Differences = append(r.Differences, fmt.Sprintf("kind %s: ClickHouse's ledger has %d entries PostgreSQL has not", k, v[0]))
		}
	}
	var paid, coins, pending int64
	if err := db.Pool().QueryRow(ctx, `SELECT count(*), coalesce(sum(coins), 0)::bigint, (SELECT count(*) FROM wallet_outbox)
		FROM wallet_transfers WHERE kind = 'gift'`).Scan(&paid, &coins, &pending); err != nil {
		return err
	}
	// Rows still in the outbox are not events yet; every other paid gift is
	// exactly one event.
	if g := ct.GiftEvents; g[0] != paid-pending || pending == 0 && g[1] != coins {
		r.Differences = append(r.Differences, fmt.Sprintf("%d paid gifts (%d coins, %d still in the outbox), %d gift events (%d coins)", paid, coins, pending, g[0], g[1]))
	}
	return nil
}
