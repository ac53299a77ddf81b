package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	_ "net/http/pprof" // served only with --pprof
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/onair/onair/accounts"
	"github.com/onair/onair/aggregate"
	"github.com/onair/onair/api"
	"github.com/onair/onair/history"
	"github.com/onair/onair/ingest"
	"github.com/onair/onair/internal/kafka"
	"github.com/onair/onair/push"
	"github.com/onair/onair/recommend"
	"github.com/onair/onair/rooms"
)

// stack is a set of started components, stopped in reverse start order.
type stack struct {
	log   *slog.Logger
	stops []namedStop
}

type namedStop struct {
	name string
	stop func(context.Context) error
}

// started records a component so that shutdown stops it.
func (s *stack) started(name string, t0 time.Time, stop func(context.Context) error) {
	s.log.Info("started", "component", name, "took", time.Since(t0).Round(time.Millisecond))
	s.stops = append(s.stops, namedStop{name, stop})
}

// startedRun runs a component in a goroutine until shutdown cancels its
// context, and waits for run to return then.
func (s *stack) startedRun(name string, t0 time.Time, run func(context.Context) error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	s.started(name, t0, func(stopCtx context.Context) error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-stopCtx.Done():
			return stopCtx.Err()
		}
	})
}

// shutdown stops every component in reverse order and logs how long each took.
func (s *stack) shutdown() {
	for i := len(s.stops) - 1; i >= 0; i-- {
		c := s.stops[i]
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		t0 := time.Now()
		err := c.stop(ctx)
		cancel()
		if err != nil {
			s.log.Error("stop failed", "component", c.name, "took", time.Since(t0).Round(time.Millisecond), "err", err)
			continue
		}
		s.log.Info("stopped", "component", c.name, "took", time.Since(t0).Round(time.Millisecond))
	}
	s.stops = nil
}

// serve connects to Kafka, Redis and ClickHouse, applies migrations, starts
// the configured roles and blocks until ctx is done. Metrics go to reg,
// which /metrics serves on the ops listener. ready, when not nil, is called
// once everything is up, with the API's and the ops listener's addresses.
func serve(ctx context.Context, cfg *config, st *stack, reg *prometheus.Registry, ready func(apiAddr, opsAddr string)) error {
	ctx, fatal := context.WithCancelCause(ctx)
	defer fatal(nil)
	d, err := connect(ctx, cfg, st, reg)
	if err != nil {
		return err
	}
	d.fatal = func(err error) { fatal(fmt.Errorf("%w: %w", errCannotGoOn, err)) }
	radio, err := startRadio(ctx, d)
	if err != nil {
		return err
	}
	c, err := newCore(ctx, d)
	if err != nil {
		return err
	}
	if cfg.has("aggregate") {
		if err := startAggregate(d, c); err != nil {
			return err
		}
		if err := startRetention(d); err != nil {
			return err
		}
	}
	apiAddr := ""
	switch {
	case cfg.has("api") || cfg.has("push"):
		apiAddr, err = startAPI(ctx, d, c, radio)
	case radio != nil:
		apiAddr, err = radioOnlyAPI(d, radio)
	}
	if err != nil {
		return err
	}
	if ready != nil {
		ready(apiAddr, d.opsAddr)
	}
	<-ctx.Done()
	if err := context.Cause(ctx); errors.Is(err, errCannotGoOn) {
		return err
	}
	d.log.Info("signal received, stopping")
	return nil
}

// errCannotGoOn stops a node when one of its components cannot go on (a
// lost node id lease), rather than a signal.
var errCannotGoOn = errors.New("stopping the node")

// core is what the api role serves and the aggregate role feeds: history,
// the events producer and the live rooms' board. Every node builds it,
// whatever its roles, as it always has: building starts nothing but the
// board's background work on an aggregate node.
type core struct {
	hist  *history.Store
	prod  *ingest.Producer
	rooms *rooms.Board
	reg   *rooms.Registry   // nil without PostgreSQL
	accts *accounts.Service // nil on a node without PostgreSQL
	// notify publishes personal frames (wire.Notifier): the PK
	// invitations and notices of the api role.
	notify *push.Notifier
}

func newCore(ctx context.Context, d *deps) (*core, error) {
	pageCache := d.cfg.PageCache
	if pageCache == 0 {
		pageCache = -1 // --history-page-cache 0: off (history.Config's 0 means its default)
	}
	hist, err := history.New(history.Config{Redis: d.rdb, Prefix: d.cfg.RedisPrefix, ClickHouse: d.guards.clickhouse.ClickHouse(d.ch), Database: d.cfg.CHDatabase,
		MaxEntries: d.cfg.HistoryMax, PageCache: pageCache, Registerer: d.reg, Log: d.log})
	if err != nil {
		return nil, err
	}
	// the Redis epoch tells a lost day marker from a new user (Touch)
	if _, err := hist.Epoch(ctx); err != nil {
		d.log.Warn("cannot read or create the Redis epoch; first_today is false for users without a day marker until it exists", "err", err)
	}
	node, err := leaseNodeID(ctx, d)
	if err != nil {
		return nil, err
	}
	ids, err := ingest.NewIDGen(uint16(node))
	if err != nil {
		return nil, err
	}
	prod, err := ingest.NewProducer(ingest.ProducerConfig{Client: d.kcl, Topic: kafka.TopicEvents, IDs: ids})
	if err != nil {
		return nil, err
	}
	accts, err := startAccounts(ctx, d)
	if err != nil {
		return nil, err
	}
	board, err := startBoard(d, prod, accts)
	if err != nil {
		return nil, err
	}
	notify := &push.Notifier{Kafka: d.kcl, Topic: kafka.TopicPushes}
	reg, err := startRegistry(ctx, d, board, accts, notify)
	if err != nil {
		return nil, err
	}
	return &core{hist: hist, prod: prod, rooms: board, reg: reg, accts: accts, notify: notify}, nil
}

// startAggregate runs the aggregate role: the consumer of onair.events that
// writes history back to Redis and batches ClickHouse.
func startAggregate(d *deps, c *core) error {
	t0 := time.Now()
	cfg := d.cfg
	agg, err := aggregate.New(aggregate.Config{Rooms: c.rooms,
		Brokers: cfg.KafkaBrokers, History: c.hist, Redis: d.rdb, Prefix: cfg.RedisPrefix,
		ClickHouse: d.ch, Database: cfg.CHDatabase, DedupeWindow: cfg.DedupeWindow,
		RedisFlush: cfg.RedisFlush, ClickHouseFlush: cfg.CHFlush, ProgressFlush: cfg.ProgressFlush, BatchRows: cfg.BatchRows,
		Registerer: d.reg, Log: d.log.With("component", "aggregate"),
	})
	if err != nil {
		return err
	}
	d.st.startedRun("aggregator", t0, agg.Run)
	return nil
}

// startAPI serves the api and push roles (and radio's routes beside them)
// on one HTTP server. A push-only node serves /v1/ws, health and metrics.
func startAPI(ctx context.Context, d *deps, c *core, radio *recommend.Engine) (string, error) {
	t0 := time.Now()
	cfg := d.cfg
	var apiProd api.Producer
	var apiHist api.History
	if cfg.has("api") {
		apiProd, apiHist = c.prod, c.hist
	}
	srv, err := api.New(api.Config{
		Addr: cfg.HTTPAddr, OpsAddr: cfg.OpsAddr, AuthSecret: []byte(cfg.AuthSecret.reveal()), PreviousSecrets: cfg.previousSecrets(),
		Redis: d.rdb, RatePrefix: cfg.RedisPrefix, RateLimit: cfg.RateLimit, ReadTimeout: cfg.ReadTimeout,
		EventRate: cfg.EventRate, EventBurst: cfg.EventBurst, ServiceEventRate: cfg.ServiceEvents,
		Producer: apiProd, History: apiHist, Registry: d.reg, Log: d.log.With("component", "api"),
		Ready: d.ready,
	})
	if err != nil {
		return "", err
	}
	if radio != nil {
		api.MountRadio(srv, radio)
	}
	if cfg.has("api") {
		api.MountRooms(srv, c.rooms, c.reg)
		api.MountAccounts(srv, api.AccountsDeps{Accounts: c.accts, Words: c.rooms, Anchors: anchorInfo(c.reg)})
		if err := startWallet(d, c, srv); err != nil {
			return "", err
		}
		if err := mountAnalytics(srv, d); err != nil {
			return "", err
		}
		if err := mountErase(srv, d, c); err != nil {
			return "", err
		}
	}
	if cfg.Pprof {
		srv.Ops().GET("/debug/pprof/*any", gin.WrapH(http.DefaultServeMux))
	}
	mountPages(srv)
	if cfg.has("push") { // before Start: routes cannot be added to a serving router
		if err := startPush(ctx, d, srv); err != nil {
			return "", err
		}
	}
	if err := srv.Start(); err != nil {
		return "", err
	}
	d.st.started("http api", t0, srv.Shutdown)
	d.opsAddr = srv.OpsAddr()
	return srv.Addr(), nil
}

// authSecret returns the configured secret or, in dev mode, the one in
// <data-dir>/auth.secret, created on first use.
func authSecret(cfg *config, dev bool) (secret, error) {
	if cfg.AuthSecret != "" {
		return cfg.AuthSecret, nil
	}
	if !dev {
		return "", errors.New("no auth secret: pass --auth-secret or set ONAIR_AUTH_SECRET")
	}
	path := filepath.Join(cfg.DataDir, "auth.secret")
	if b, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return secret(strings.TrimSpace(string(b))), nil
	}
	buf := make([]byte, 32)
	if _, err := rand.Read(buf); err != nil {
		return "", err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return "", err
	}
	s := hex.EncodeToString(buf)
	if err := os.WriteFile(path, []byte(s+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("cannot write %s: %w", path, err)
	}
	return secret(s), nil
}

// newLogger logs at --log-level to w. Every message and value goes through
// c.redact, so neither a secret nor a DSN's password reaches the log, even
// quoted in a dependency's error.
func (c *config) newLogger(w io.Writer) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l, ReplaceAttr: c.redactAttr})), nil
}
