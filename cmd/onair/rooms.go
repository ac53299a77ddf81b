package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/onair/onair/aggregate"
	"github.com/onair/onair/internal/kafka"
	"github.com/onair/onair/rooms"
)

// The board is the aggregator's RoomSink.
var _ aggregate.RoomSink = (*rooms.Board)(nil)

type boardDeps struct {
	rdb    redis.UniversalClient
	kafka  *kgo.Client
	ch     driver.Conn
	events rooms.Producer
	reg    prometheus.Registerer
	log    *slog.Logger
}

// startBoard builds the live rooms' board (rooms), which the api role
// serves and the aggregate role feeds. With the aggregate role it also runs
// the board's background work: leaderboard frames and the play
// leaderboards' refresh from ClickHouse.
func startBoard(cfg *config, st *stack, d boardDeps) (*rooms.Board, error) {
	t0 := time.Now()
	bc := rooms.Config{Redis: d.rdb, Prefix: cfg.RedisPrefix, Kafka: d.kafka, Topic: kafka.TopicPushes,
		Events: d.events, Database: cfg.CHDatabase, DanmakuRate: cfg.DanmakuRate, DedupeWindow: cfg.DedupeWindow,
		Registerer: d.reg, Log: d.log.With("component", "board")}
	if cfg.has("aggregate") {
		bc.ClickHouse = d.ch
	}
	b, err := rooms.New(bc)
	if err != nil || !cfg.has("aggregate") {
		return b, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); b.Run(ctx) }()
	st.started("live rooms board", t0, func(ctx context.Context) error {
		cancel()
		select {
		case <-done:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	return b, nil
}
