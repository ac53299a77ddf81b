package main

import (
	"context"
	"crypto/rand"
	"time"

	"github.com/onair/onair/accounts"
	"github.com/onair/onair/aggregate"
	"github.com/onair/onair/api"
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

// startRegistry builds the registry of anchors, rooms and PKs (PostgreSQL,
// the system of record) over the board, on a node with PostgreSQL (every
// api node has it), and runs its reconcile loop there: the rooms' hot copy
// is rebuilt within about a second of a Redis loss. Anchors are named by
// accounts' nicknames, and PK invitations go to the personal channel.
func startRegistry(ctx context.Context, d *deps, b *rooms.Board, accts *accounts.Service, notify rooms.Notifier) (*rooms.Registry, error) {
	if d.pg == nil || !d.cfg.has("api") {
		return nil, nil
	}
	t0 := time.Now()
	cfg := d.cfg
	key := []byte(cfg.StreamKey.reveal())
	if len(key) == 0 {
		key = make([]byte, 32)
		_, _ = rand.Read(key)
		d.log.Warn("no --stream-key: stream URLs are signed with a random key of this process, which no media server can check")
	}
	rc := rooms.RegistryConfig{DB: d.pg, Board: b, Notifier: notify,
		Streams: rooms.StreamURLs{Push: cfg.StreamPush, Play: cfg.StreamPlay, Key: key, TTL: cfg.StreamTTL},
		Log:     d.log.With("component", "rooms registry")}
	if accts != nil {
		rc.Names = accts.Names()
	}
	reg, err := rooms.NewRegistry(ctx, rc)
	if err != nil {
		return nil, err
	}
	d.st.startedRun("rooms registry", t0, func(ctx context.Context) error { reg.Run(ctx); return nil })
	return reg, nil
}

// anchorInfo is what GET /v1/me says of anchors: the registry, or nobody
// is an anchor on a node without it.
func anchorInfo(reg *rooms.Registry) api.AnchorInfo {
	if reg == nil {
		return nil
	}
	return reg
}
