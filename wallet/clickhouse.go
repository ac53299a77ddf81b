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

// Totals reads the paid gift events: their count (every row, so a
// duplicate shows) and coins; entries is nil (no ledger copy yet).
func (c ClickHouseCopy) Totals(ctx context.Context) (map[string][2]int64, [2]int64, error) {
	var n, distinct, coins uint64
	q := fmt.Sprintf(`SELECT count(), uniqExact(event_id), sum(value) FROM %s.events WHERE type = 'gift' AND event_id LIKE 'wt%%'`, c.Database)
	if err := c.Conn.QueryRow(ctx, q).Scan(&n, &distinct, &coins); err != nil {
		return nil, [2]int64{}, fmt.Errorf("cannot read the gift events of ClickHouse: %w", err)
	}
	if n != distinct {
		return nil, [2]int64{int64(n), int64(coins)}, fmt.Errorf("ClickHouse holds %d paid gift events for %d event ids: a duplicate", n, distinct)
	}
	return nil, [2]int64{int64(n), int64(coins)}, nil
}
