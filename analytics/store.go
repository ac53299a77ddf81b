// Package analytics answers questions about what people play from the
// ClickHouse rollups (docs/analytics.md): item popularity per window and a
// user's engagement with tags and categories, and the figures of the
// analytics page (/analytics/). It reads only; the rollups are kept by
// materialized views on onair.events (internal/migrate/sql).
//
// Nothing here is on an app's request path: callers use it in the
// background (radio's playlist builder) or for admin pages.
package analytics

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/onair/onair/ingest"
	"github.com/onair/onair/internal/chdb"
	"github.com/onair/onair/internal/refusal"
)

// Config configures a Store.
type Config struct {
	// ClickHouse is the connection. Required.
	ClickHouse driver.Conn
	// Database holds onair's tables; "" = "onair".
	Database string
	// Registerer receives the onair_analytics_* metrics; nil = none.
	Registerer prometheus.Registerer
	// Log receives query failures; nil = discard.
	Log *slog.Logger
}

// Store runs the analytics queries.
type Store struct {
	ch  driver.Conn
	db  string
	log *slog.Logger
	m   *metrics
}

// New validates cfg and returns a Store.
func New(cfg Config) (*Store, error) {
	if cfg.ClickHouse == nil {
		return nil, errors.New("analytics: Config.ClickHouse is required")
	}
	if cfg.Database == "" {
		cfg.Database = "onair"
	}
	if !chdb.ValidIdent(cfg.Database) {
		return nil, fmt.Errorf("analytics: invalid database name %q", cfg.Database)
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, fmt.Errorf("analytics: register metrics: %w", err)
	}
	return &Store{ch: cfg.ClickHouse, db: cfg.Database, log: cfg.Log, m: m}, nil
}

// Window is a popularity window.
type Window string

// Windows of Popularity, by the ClickHouse server's clock and time zone.
// Their values are the query parameter of GET /v1/admin/analytics/top
// (docs/api.md), a contract: the last 7 days travel as "week", though in
// onair a week is the calendar week (since Monday, the play leaderboards'
// window=week) and analytics' rolling windows are "the last N days".
const (
	WindowHour      Window = "hour" // the current hour
	WindowDay       Window = "day"  // today
	WindowLast7Days Window = "week" // the last 7 days, today included (as days=7 elsewhere here)
)

// ItemStat is one item's counts over a window.
type ItemStat struct {
	ItemID     uint64 `json:"item_id"`
	Plays      uint64 `json:"plays"`
	ListenedMs uint64 `json:"listened_ms"`
	Likes      uint64 `json:"likes"`
	Skips      uint64 `json:"skips"`
}

// MaxLimit bounds every limit argument.
const MaxLimit = 1000

func checkLimit(limit int) error {
	if limit < 1 || limit > MaxLimit {
		return refusal.Invalidf("limit", "limit %d not in 1..%d", limit, MaxLimit)
	}
	return nil
}

// Popularity returns biz's most played items of window w, most plays first
// (ties by item id), from item_plays_hourly (hour) or item_plays_daily.
func (s *Store) Popularity(ctx context.Context, biz ingest.Biz, w Window, limit int) ([]ItemStat, error) {
	if err := checkLimit(limit); err != nil {
		return nil, err
	}
	if biz.String() == "" || int(biz) > len(ingest.Bizes) {
		return nil, refusal.Invalidf("biz", "unknown biz %d", biz)
	}
	var from string
	switch w {
	case WindowHour:
		from = s.db + ".item_plays_hourly WHERE biz = ? AND hour = toStartOfHour(now())"
	case WindowDay:
		from = s.db + ".item_plays_daily WHERE biz = ? AND day = today()"
	case WindowLast7Days:
		from = s.db + ".item_plays_daily WHERE biz = ? AND day > today() - 7"
	default:
		return nil, refusal.Invalidf("window", "window %q: want hour, day or week", w)
	}
	q := "SELECT item_id, sum(plays) AS p, sum(listened_ms), sum(likes), sum(skips) FROM " + from +
		" GROUP BY item_id ORDER BY p DESC, item_id LIMIT " + fmt.Sprint(limit)
	var out []ItemStat
	err := s.query(ctx, "popularity", q, []any{biz.String()}, func(scan func(...any) error) error {
		var it ItemStat
		if err := scan(&it.ItemID, &it.Plays, &it.ListenedMs, &it.Likes, &it.Skips); err != nil {
			return err
		}
		out = append(out, it)
		return nil
	})
	return out, err
}

// Engagement is a user's engagement with one tag or category: the sums of
// the user_affinity rollup and their engagement score.
type Engagement struct {
	Kind       string `json:"kind"` // "tag" or "category"
	Key        string `json:"key"`
	Plays      uint64 `json:"plays"`
	ListenedMs uint64 `json:"listened_ms"`
	Skips      uint64 `json:"skips"`
	// Score is the engagement score, minutes listened + plays − 2 × skips:
	// listening is the signal, a skip a stronger one against
	// (docs/analytics.md). It is not smart radio's affinity, which weighs
	// log(1+plays) − log(1+skips) for ordering personal slots (recommend).
	Score float64 `json:"score"`
}

// UserEngagement returns user's tags and categories of the last days days
// (today included), best engagement score first (ties by kind, key), from
// user_affinity. GET /v1/admin/analytics/affinity serves it.
func (s *Store) UserEngagement(ctx context.Context, user uint64, days, limit int) ([]Engagement, error) {
	if err := checkLimit(limit); err != nil {
		return nil, err
	}
	if user == 0 {
		return nil, refusal.Invalidf("user", "want a user id")
	}
	if err := checkDays(days); err != nil {
		return nil, err
	}
	q := "SELECT toString(kind) AS k, key, sum(plays) AS p, sum(listened_ms) AS l, sum(skips) AS sk, " + engagementScore + " AS score FROM " + s.db +
		".user_affinity WHERE user_id = ? AND day > today() - ? GROUP BY kind, key ORDER BY score DESC, k, key LIMIT " + fmt.Sprint(limit)
	var out []Engagement
	err := s.query(ctx, "affinity", q, []any{user, days}, func(scan func(...any) error) error {
		var a Engagement
		if err := scan(&a.Kind, &a.Key, &a.Plays, &a.ListenedMs, &a.Skips, &a.Score); err != nil {
			return err
		}
		out = append(out, a)
		return nil
	})
	return out, err
}

// engagementScore is Engagement.Score in SQL over the sums p, l, sk.
const engagementScore = "l / 60000 + p - 2 * sk"

// query runs q and calls row for each row, timing it and counting failures.
func (s *Store) query(ctx context.Context, name, q string, args []any, row func(scan func(...any) error) error) error {
	start := time.Now()
	err := s.run(ctx, q, args, row)
	s.m.seconds.WithLabelValues(name).Observe(time.Since(start).Seconds())
	if err != nil {
		s.m.errors.WithLabelValues(name).Inc()
		s.log.Error("analytics query failed", "query", name, "err", err)
		return fmt.Errorf("analytics %s: %w", name, err)
	}
	return nil
}

func (s *Store) run(ctx context.Context, q string, args []any, row func(scan func(...any) error) error) error {
	rows, err := s.ch.Query(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := row(rows.Scan); err != nil {
			return err
		}
	}
	return rows.Err()
}

type metrics struct {
	seconds *prometheus.HistogramVec
	errors  *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "onair_analytics_query_seconds",
			Help: "Time of analytics queries, by query.", Buckets: prometheus.ExponentialBuckets(0.001, 4, 8)}, []string{"query"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "onair_analytics_query_errors_total",
			Help: "Analytics queries that failed, by query."}, []string{"query"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.seconds, m.errors} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}
