// Package rooms owns live rooms' state and everything counted in them:
// anchors, rooms and PKs in PostgreSQL (Registry, the system of record and
// the one writer of each room's hot copy in Redis, rebuilt after a Redis
// loss), rooms opened and closed by their anchor, danmaku and gifts accepted as
// events and pushed to the room, the room gift ranking and PK bar (exact
// under aggregator replays: fenced by Kafka (partition, offset) inside the
// script that counts), and the play leaderboards (derived from ClickHouse's
// exactly-once rollups). It publishes the room frames push nodes fan out
// (Kafka topic "pushes", key = room id) and keeps each room's latest state
// in Redis for their snapshots. The WebSocket gateway itself is package push;
// what the two share (room keys, frame types, the head-count rule) is
// package wire, which both import.
//
// See DESIGN.md, "Live rooms and leaderboards (rooms)".
package rooms

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/go-redis/redis_rate/v10"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/onair/onair/ingest"
	"github.com/onair/onair/rooms/wire"
)

// Producer takes events to the "events" topic; a nil error means Kafka
// acknowledged them. *ingest.Producer implements it (the ingest path).
type Producer interface {
	Produce(ctx context.Context, events []ingest.Event) error
}

// Config configures a Board. Zero values mean the documented defaults.
type Config struct {
	// Redis holds every room's state. Required.
	Redis redis.UniversalClient
	// Prefix is put in front of every Redis key.
	Prefix string
	// Kafka produces frames to Topic; it should wait for all in-sync
	// replicas (a published frame is then durable). Required.
	Kafka *kgo.Client
	// Topic is where frames go; "" = "pushes".
	Topic string
	// Events takes danmaku and gifts to the events topic. nil = Danmaku and
	// Gift fail with ErrNoProducer (a node without the api role).
	Events Producer
	// ClickHouse feeds the play leaderboards (Run refreshes them). nil =
	// no refresher on this node.
	ClickHouse driver.Conn
	// Database is the ClickHouse database; "" = "onair".
	Database string

	// MaxText is the longest danmaku in characters; 0 = 100.
	MaxText int
	// DanmakuRate is how many danmaku a user may send per second in one
	// room (burst: three times that); 0 = 2, negative = no limit.
	DanmakuRate int
	// MaxGiftValue bounds one gift's value; 0 = 1 000 000.
	MaxGiftValue uint64
	// PKDuration is how long a PK runs when no side reaches 100 (it then
	// ends in a draw and the rooms are free again); 0 = 10 min.
	PKDuration time.Duration
	// DedupeWindow is how long a client event_id of a gift is remembered
	// by its room; 0 = 1 hour.
	DedupeWindow time.Duration
	// FrameInterval is the least time between two leaderboard frames of a
	// room from this node; 0 = 1 s.
	FrameInterval time.Duration
	// PlaysRefresh is how often the play leaderboards are recomputed from
	// ClickHouse; 0 = 5 s.
	PlaysRefresh time.Duration
	// PlaysCache is how long a node serves a play leaderboard it read;
	// 0 = 1 s.
	PlaysCache time.Duration
	// PlaysGrace keeps a finished window this long before Redis expires it;
	// 0 = 1 hour.
	PlaysGrace time.Duration

	// Names gives the nicknames frames and rankings carry beside user ids
	// (*accounts.Names); nil = frames and rankings carry no nickname.
	Names Names

	// Registerer receives the onair_board_* metrics; nil = not registered.
	Registerer prometheus.Registerer
	// Log receives logs; nil = discard.
	Log *slog.Logger
	// Now is the clock; nil = time.Now.
	Now func() time.Time
}

// Names looks up nicknames: how frames and rankings name people (never by
// phone). Lookups do not fail: an unknown user gets a stand-in name.
type Names interface {
	Nickname(ctx context.Context, userID uint64) string
	Nicknames(ctx context.Context, userIDs []uint64) map[uint64]string
}

// Board is one node's handle on live rooms. It is safe for concurrent use.
type Board struct {
	cfg     Config
	rdb     redis.UniversalClient
	log     *slog.Logger
	m       *metrics
	limiter *redis_rate.Limiter
	words   wordCache
	plays   playsCache

	mu    sync.Mutex
	dirty map[uint64]struct{} // rooms whose leaderboard changed since the last frame
}

// DefaultDanmakuRate is Config.DanmakuRate's default, exported so that
// flags (cmd/onair) show the value that applies instead of repeating it.
const DefaultDanmakuRate = 2

// New validates cfg and returns a Board.
func New(cfg Config) (*Board, error) {
	switch {
	case cfg.Redis == nil:
		return nil, errors.New("board: Config.Redis is required")
	case cfg.Kafka == nil:
		return nil, errors.New("board: Config.Kafka is required")
	case cfg.MaxText < 0:
		return nil, fmt.Errorf("board: Config.MaxText %d is negative", cfg.MaxText)
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if cfg.Topic == "" {
		cfg.Topic = "pushes"
	}
	if cfg.Database == "" {
		cfg.Database = "onair"
	}
	if cfg.MaxText == 0 {
		cfg.MaxText = 100
	}
	if cfg.DanmakuRate == 0 {
		cfg.DanmakuRate = DefaultDanmakuRate
	}
	if cfg.MaxGiftValue == 0 {
		cfg.MaxGiftValue = 1_000_000
	}
	def(&cfg.PKDuration, 10*time.Minute)
	def(&cfg.DedupeWindow, time.Hour)
	def(&cfg.FrameInterval, time.Second)
	def(&cfg.PlaysRefresh, 5*time.Second)
	def(&cfg.PlaysCache, time.Second)
	def(&cfg.PlaysGrace, time.Hour)
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, fmt.Errorf("board: register metrics: %w", err)
	}
	b := &Board{cfg: cfg, rdb: cfg.Redis, log: cfg.Log, m: m, dirty: map[uint64]struct{}{}}
	if cfg.DanmakuRate > 0 {
		b.limiter = redis_rate.NewLimiter(cfg.Redis)
	}
	b.plays.entries = map[string]playsEntry{}
	return b, nil
}

// Run drives the background work of the aggregate role until ctx ends:
// leaderboard frames (at most one per room per FrameInterval) and, with
// ClickHouse configured, the play leaderboards' refresh.
func (b *Board) Run(ctx context.Context) {
	var wg sync.WaitGroup
	if b.cfg.ClickHouse != nil {
		wg.Add(1)
		go func() { defer wg.Done(); b.refreshPlaysLoop(ctx) }()
	}
	b.frameLoop(ctx)
	wg.Wait()
}

// Redis keys. Everything of a room shares the hash tag {r<id>} (wire.Key);
// a PK is an owner of its own ({pk<id>}); no script touches two owners.
func (b *Board) roomKey(room uint64, kind string) string { return wire.Key(b.cfg.Prefix, room, kind) }

func (b *Board) pkKey(id string) string { return b.cfg.Prefix + "{pk" + id + "}:pk" }

// Room key kinds of rooms' own (those push reads too are wire.Kind*): lb
// (gift ranking ZSET), lbm (its fences and version), gd (client gift ids).
const (
	kindLB     = "lb"
	kindLBMeta = "lbm"
	kindGiftID = "gd"
	// kindGiftIDOld is the previous generation of client gift ids
	// (gifts.lua).
	kindGiftIDOld = "gd:old"
)

// liveIndex is a ZSET of open rooms by opening time (ms): a hint for
// listing (the room hash is the truth); at most one member per open room.
func (b *Board) liveIndex() string { return b.cfg.Prefix + "{rooms}:live" }

func (b *Board) now() time.Time { return b.cfg.Now() }
