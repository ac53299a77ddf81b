// Package aggregate consumes the "events" topic and turns it into history
// (Redis, through package history) and analytics (ClickHouse), exactly once.
// See DESIGN.md for the data path and its invariants.
package aggregate

import (
	"errors"
	"log/slog"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/onair/onair/history"
)

// Config configures an Aggregator. Zero values mean the documented defaults.
type Config struct {
	// Brokers are the Kafka seed brokers. Required.
	Brokers []string
	// Topic is the topic to consume; "" means "events".
	Topic string
	// Group is the consumer group; "" means "onair-aggregate". Aggregators in
	// one group share the topic's partitions.
	Group string
	// InstanceID turns on static group membership (KIP-345): a process that
	// restarts with the same id takes its partitions back at once instead of
	// waiting for its old session to time out. "" means dynamic membership.
	InstanceID string
	// SessionTimeout is how long the group waits for a silent member before
	// giving its partitions away; 0 means franz-go's default (45 s).
	SessionTimeout time.Duration

	// History receives collapsed progress (Redis write-back). Required.
	History *history.Store
	// Redis holds the event_id dedupe marks. Required.
	Redis redis.UniversalClient
	// Prefix is prepended to every Redis key this package writes.
	Prefix string
	// DedupeWindow is how long a client event_id is remembered; a retry later
	// than this is counted again. 0 means 1 hour.
	DedupeWindow time.Duration

	// Rooms counts gifts into live rooms (package rooms); nil = gifts
	// are only stored in ClickHouse.
	Rooms RoomSink

	// ClickHouse is a native-protocol connection. Required.
	ClickHouse driver.Conn
	// Database is the ClickHouse database; "" means "onair".
	Database string

	// RedisFlush is the write-back interval; 0 means 100 ms.
	RedisFlush time.Duration
	// ClickHouseFlush is the batch interval; 0 means 1 s.
	ClickHouseFlush time.Duration
	// ProgressFlush is how long onair.progress rows are held and collapsed
	// (last write wins per user and item) before one INSERT; 0 means 30 s.
	// Players report every few seconds, so this is what turns many reports
	// into one row. A restart replays from the progress watermark, so
	// holding rows longer loses nothing; it only makes onair.progress (not
	// Redis) lag by up to this much.
	ProgressFlush time.Duration
	// BatchRows flushes ClickHouse early once this many event rows are
	// buffered; 0 means 100 000. It stays well under ClickHouse's
	// max_insert_block_size so each INSERT is one atomic block.
	BatchRows int
	// MaxPollRecords bounds one poll; 0 means 10 000.
	MaxPollRecords int
	// RetryBackoff is the first delay after a sink error, doubled up to
	// 5 s; 0 means 100 ms.
	RetryBackoff time.Duration

	// Registerer receives the metrics; nil means none are registered.
	Registerer prometheus.Registerer
	// Log receives logs; nil discards them.
	Log *slog.Logger
}

// Defaults of Config, exported so that flags (cmd/onair) show the value
// that applies instead of repeating it.
const (
	DefaultDedupeWindow    = time.Hour
	DefaultRedisFlush      = 100 * time.Millisecond
	DefaultClickHouseFlush = time.Second
	DefaultProgressFlush   = 30 * time.Second
	DefaultBatchRows       = 100_000
)

func (c *Config) validate() error {
	switch {
	case len(c.Brokers) == 0:
		return errors.New("aggregate: Config.Brokers is required")
	case c.History == nil:
		return errors.New("aggregate: Config.History is required")
	case c.Redis == nil:
		return errors.New("aggregate: Config.Redis is required")
	case c.ClickHouse == nil:
		return errors.New("aggregate: Config.ClickHouse is required")
	case c.BatchRows < 0 || c.BatchRows > 1_000_000:
		return errors.New("aggregate: Config.BatchRows must be in [0, 1000000]")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if c.Topic == "" {
		c.Topic = "events"
	}
	if c.Group == "" {
		c.Group = "onair-aggregate"
	}
	if c.Database == "" {
		c.Database = "onair"
	}
	def(&c.DedupeWindow, DefaultDedupeWindow)
	def(&c.RedisFlush, DefaultRedisFlush)
	def(&c.ClickHouseFlush, DefaultClickHouseFlush)
	def(&c.ProgressFlush, DefaultProgressFlush)
	def(&c.RetryBackoff, 100*time.Millisecond)
	if c.BatchRows == 0 {
		c.BatchRows = DefaultBatchRows
	}
	if c.MaxPollRecords <= 0 {
		c.MaxPollRecords = 10_000
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	return nil
}
