package main

import (
	"context"
	"time"

	"github.com/onair/onair/accounts"
	"github.com/onair/onair/aggregate"
	"github.com/onair/onair/internal/kafka"
	"github.com/onair/onair/rooms"
)

// The board is the aggregator's RoomSink.
var _ aggregate.RoomSink = (*rooms.Board)(nil)

// startBoard builds the live rooms' board (rooms), which the api role
// serves and the aggregate role feeds; events is where the board produces
// the gifts it accepts. With the aggregate role it also runs the board's
// background work: leaderboard frames and the play leaderboards' refresh
// from ClickHouse.
func startBoard(d *deps, events rooms.Producer, accts *accounts.Service) (*rooms.Board, error) {
	t0 := time.Now()
	cfg := d.cfg
	bc := rooms.Config{Redis: d.rdb, Prefix: cfg.RedisPrefix, Kafka: d.kcl, Topic: kafka.TopicPushes,
		Events: events, Database: cfg.CHDatabase, DanmakuRate: cfg.DanmakuRate, DedupeWindow: cfg.DedupeWindow,
		Registerer: d.reg, Log: d.log.With("component", "board")}
	if cfg.has("aggregate") {
		bc.ClickHouse = d.ch
	}
	if accts != nil { // else frames and rankings carry no nickname
		bc.Names = accts.Names()
	}
	b, err := rooms.New(bc)
	if err != nil || !cfg.has("aggregate") {
		return b, err
	}
	d.st.startedRun("live rooms board", t0, func(ctx context.Context) error { b.Run(ctx); return nil })
	return b, nil
}
