package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/onair/onair/internal/chdb"
	"github.com/onair/onair/internal/kafka"
)

// RetainedTables are the tables --retention ages out: onair.events and its
// rollups, each partitioned by month (toYYYYMM; events by ingested_at, the
// rollups by their hour or day). A month is dropped whole, as one
// ALTER TABLE ... DROP PARTITION (cheap: its parts are unlinked, nothing is
// rewritten), once its last day is older than the retention. onair.progress
// and onair.history_ops are not: they are the users' history itself, kept
// until the user clears it or is erased.
var RetainedTables = []string{"events", "item_plays_hourly", "item_plays_daily", "dau_daily", "room_gifts_daily",
	"user_daily", "user_item_daily", "station_daily", "user_affinity"}

// DefaultRetentionInterval is how often Retention looks for months to drop.
const DefaultRetentionInterval = time.Hour

// RetentionConfig configures a Retention.
type RetentionConfig struct {
	// ClickHouse is the connection. Required.
	ClickHouse driver.Conn
	// Database holds onair's tables; "" = "onair".
	Database string
	// Topic is the events topic whose resume points are kept; "" =
	// kafka.TopicEvents.
	Topic string
	// Keep is the retention: a month is dropped once all of it is older
	// than Keep. Required, at least 31 days (a shorter one would drop the
	// month being written at the start of the next).
	Keep time.Duration
	// Interval is how often Run looks; 0 = DefaultRetentionInterval.
	Interval time.Duration
	// Registerer receives the onair_lifecycle_* metrics; nil = none.
	Registerer prometheus.Registerer
	// Log receives every drop and every failure; nil = discard.
	Log *slog.Logger
	// Now is the clock; nil = time.Now. Months are in UTC here and in the
	// ClickHouse server's time zone in toYYYYMM; the 31-day minimum covers
	// the difference.
	Now func() time.Time
}

// MinRetention is the shortest retention RetentionConfig accepts.
const MinRetention = 31 * 24 * time.Hour

// Retention drops the months of RetainedTables older than the retention.
// Several aggregate nodes may each run one: dropping a partition that is
// gone already is a no-op.
type Retention struct {
	cfg RetentionConfig
	m   *metrics
}

// NewRetention validates cfg and returns a Retention.
func NewRetention(cfg RetentionConfig) (*Retention, error) {
	switch {
	case cfg.ClickHouse == nil:
		return nil, errors.New("lifecycle: RetentionConfig.ClickHouse is required")
	case cfg.Keep < MinRetention:
		return nil, fmt.Errorf("lifecycle: retention %s is shorter than %s", cfg.Keep, MinRetention)
	case cfg.Interval < 0:
		return nil, fmt.Errorf("lifecycle: RetentionConfig.Interval %s is negative", cfg.Interval)
	}
	if cfg.Database == "" {
		cfg.Database = "onair"
	}
	if !chdb.ValidIdent(cfg.Database) {
		return nil, fmt.Errorf("lifecycle: invalid database name %q", cfg.Database)
	}
	if cfg.Topic == "" {
		cfg.Topic = kafka.TopicEvents
	}
	if cfg.Interval == 0 {
		cfg.Interval = DefaultRetentionInterval
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, fmt.Errorf("lifecycle: register metrics: %w", err)
	}
	return &Retention{cfg: cfg, m: m}, nil
}

// Run drops old months now and then every Interval until ctx ends. A
// failed run is logged and counted, and the next one tries again.
func (r *Retention) Run(ctx context.Context) error {
	t := time.NewTicker(r.cfg.Interval)
	defer t.Stop()
	for {
		if _, err := r.Once(ctx); err != nil && ctx.Err() == nil {
			r.m.failures.WithLabelValues("retention").Inc()
			r.cfg.Log.Error("retention run failed; trying again later", "next", r.cfg.Interval, "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Dropped is one partition a run dropped: a table and a month (YYYYMM).
type Dropped struct {
	Table string
	Month string
}

// Once drops every month of RetainedTables that ended before now minus the
// retention, and returns what it dropped.
func (r *Retention) Once(ctx context.Context) ([]Dropped, error) {
	due, err := r.due(ctx)
	if err != nil || len(due) == 0 {
		return nil, err
	}
	if slices.ContainsFunc(due, func(d Dropped) bool { return d.Table == "events" }) {
		if err := keepResumePoints(ctx, r.cfg.ClickHouse, r.cfg.Database, r.cfg.Topic); err != nil {
			return nil, err
		}
	}
	var done []Dropped
	for _, d := range due {
		q := fmt.Sprintf("ALTER TABLE %s.%s DROP PARTITION %s", r.cfg.Database, d.Table, d.Month)
		if err := r.cfg.ClickHouse.Exec(ctx, q); err != nil {
			return done, fmt.Errorf("cannot drop month %s of %s.%s: %w", d.Month, r.cfg.Database, d.Table, err)
		}
		r.m.dropped.WithLabelValues(d.Table).Inc()
		r.cfg.Log.Info("retention dropped a month", "table", d.Table, "month", d.Month, "retention", r.cfg.Keep)
		done = append(done, d)
	}
	return done, nil
}

// due lists the active partitions of RetainedTables whose month ended
// before the cut-off.
func (r *Retention) due(ctx context.Context) ([]Dropped, error) {
	cutoff := r.cfg.Now().Add(-r.cfg.Keep).UTC()
	rows, err := r.cfg.ClickHouse.Query(ctx, "SELECT DISTINCT table, partition FROM system.parts WHERE database = ? AND active AND table IN ('"+
		strings.Join(RetainedTables, "','")+"') ORDER BY table, partition", r.cfg.Database)
	if err != nil {
		return nil, fmt.Errorf("cannot list the partitions of %s: %w", r.cfg.Database, err)
	}
	defer rows.Close()
	var out []Dropped
	for rows.Next() {
		var d Dropped
		if err := rows.Scan(&d.Table, &d.Month); err != nil {
			return nil, err
		}
		month, err := time.Parse("200601", d.Month)
		if err != nil {
			return nil, fmt.Errorf("table %s has partition %q, not a YYYYMM month", d.Table, d.Month)
		}
		if !month.AddDate(0, 1, 0).After(cutoff) {
			out = append(out, d)
		}
	}
	return out, rows.Err()
}
