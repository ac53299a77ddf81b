package wallet

import (
	"context"
	"fmt"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// ClickHouseCopy is the analytics side of Reconcile: the paid gifts'
// events in <Database>.events (event id "wt<transfer id>", written once by
// the aggregator's dedupe).
type ClickHouseCopy struct {
	Conn     driver.Conn
	Database string
}

var _ LedgerCopy = ClickHouseCopy{}

// Totals reads the ledger copy's totals and the paid gift events: their
// count (every row, so a duplicate is an error) and coins.
func (c ClickHouseCopy) Totals(ctx context.Context) (CopyTotals, error) {
	ct := CopyTotals{Entries: map[string][2]int64{}}
	rows, err := c.Conn.Query(ctx, fmt.Sprintf(`SELECT transfer_kind, count(), sum(coins) FROM %s.ledger GROUP BY transfer_kind`, c.Database))
	if err != nil {
		return ct, fmt.Errorf("cannot read ClickHouse's ledger: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k string
		var n uint64
		var s int64
		if err := rows.Scan(&k, &n, &s); err != nil {
			return ct, err
		}
		ct.Entries[k] = [2]int64{int64(n), s}
	}
	if err := rows.Err(); err != nil {
		return ct, err
	}
	var ids, distinct, n, coins uint64
	q := fmt.Sprintf(`SELECT (SELECT max(xid_to) FROM %[1]s.ledger), (SELECT count() FROM %[1]s.ledger), (SELECT uniqExact(entry_id) FROM %[1]s.ledger)`, c.Database)
	if err := c.Conn.QueryRow(ctx, q).Scan(&ct.UpTo, &ids, &distinct); err != nil {
		return ct, fmt.Errorf("cannot read ClickHouse's ledger: %w", err)
	}
	if ids != distinct {
		return ct, fmt.Errorf("ClickHouse's ledger holds %d rows for %d entries: a duplicate", ids, distinct)
	}
	q = fmt.Sprintf(`SELECT count(), uniqExact(event_id), sum(value) FROM %s.events WHERE type = 'gift' AND event_id LIKE 'wt%%'`, c.Database)
	if err := c.Conn.QueryRow(ctx, q).Scan(&n, &distinct, &coins); err != nil {
		return ct, fmt.Errorf("cannot read the gift events of ClickHouse: %w", err)
	}
	if n != distinct {
		return ct, fmt.Errorf("ClickHouse holds %d paid gift events for %d event ids: a duplicate", n, distinct)
	}
	ct.GiftEvents = [2]int64{int64(n), int64(coins)}
	return ct, nil
}
