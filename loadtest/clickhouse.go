package loadtest

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// chStore finds a run's events in onair.events over the native protocol
// (ClickHouse 18.16 rejects clickhouse-go's HTTP settings).
type chStore struct {
	conn driver.Conn
	db   string
}

var _ eventStore = (*chStore)(nil)

func openClickHouse(ctx context.Context, cfg E2EConfig) (*chStore, error) {
	conn, err := clickhouse.Open(&clickhouse.Options{
		Addr:        []string{cfg.ClickHouse},
		Auth:        clickhouse.Auth{Database: cfg.Database, Username: cfg.CHUser, Password: cfg.CHPassword},
		DialTimeout: 5 * time.Second,
	})
	if err != nil {
		return nil, fmt.Errorf("cannot open ClickHouse at %s: %w", cfg.ClickHouse, err)
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := conn.Ping(pctx); err != nil {
		conn.Close()
		return nil, fmt.Errorf("cannot reach ClickHouse at %s: %w", cfg.ClickHouse, err)
	}
	return &chStore{conn: conn, db: cfg.Database}, nil
}

// where selects a run's rows. prefix is "lt-<hex>-" (no LIKE wildcards or
// quotes) and db a checked identifier, so plain formatting is safe; the ts
// bound lets the primary key (type, biz, ts, user_id) skip old granules.
func (s *chStore) where(prefix string, since time.Time) string {
	return fmt.Sprintf("FROM %s.events WHERE event_id LIKE '%s%%' AND ts >= toDateTime(%d)", s.db, prefix, since.Unix())
}

// Rows implements eventStore.
func (s *chStore) Rows(ctx context.Context, prefix string, since time.Time) (uint64, error) {
	var n uint64
	err := s.conn.QueryRow(ctx, "SELECT count() "+s.where(prefix, since)).Scan(&n)
	return n, err
}

// Distinct implements eventStore.
func (s *chStore) Distinct(ctx context.Context, prefix string, since time.Time) (uint64, error) {
	var n uint64
	err := s.conn.QueryRow(ctx, "SELECT uniqExact(event_id) "+s.where(prefix, since)).Scan(&n)
	return n, err
}

// Counts implements eventStore.
func (s *chStore) Counts(ctx context.Context, prefix string, since time.Time) (map[string]uint64, error) {
	rows, err := s.conn.Query(ctx, "SELECT event_id, count() "+s.where(prefix, since)+" GROUP BY event_id")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	counts := map[string]uint64{}
	for rows.Next() {
		var id string
		var n uint64
		if err := rows.Scan(&id, &n); err != nil {
			return nil, err
		}
		counts[id] = n
	}
	return counts, rows.Err()
}

// Close implements eventStore.
func (s *chStore) Close() error { return s.conn.Close() }

func validIdent(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		switch {
		case c == '_', c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// historyPage is the part of GET /v1/history a probe reads.
type historyPage struct {
	Items []struct {
		Biz       string `json:"biz"`
		ItemID    uint64 `json:"item_id"`
		UpdatedAt int64  `json:"updated_at"`
	} `json:"items"`
}

func decodeJSON(r io.Reader, v any) error {
	return json.NewDecoder(io.LimitReader(r, 4<<20)).Decode(v)
}

// quantile is the nearest-rank q-quantile of xs (sorted in place); at 0.5
// the lower median.
func quantile[T cmp.Ordered](xs []T, q float64) T {
	slices.Sort(xs)
	i := int(q*float64(len(xs))+0.999999) - 1
	return xs[min(max(i, 0), len(xs)-1)]
}
