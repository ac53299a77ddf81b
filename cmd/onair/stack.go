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

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/onair/onair/aggregate"
	"github.com/onair/onair/api"
	"github.com/onair/onair/history"
	"github.com/onair/onair/ingest"
	"github.com/onair/onair/internal/chdb"
	"github.com/onair/onair/internal/kafka"
	"github.com/onair/onair/internal/migrate"
	"github.com/onair/onair/internal/redisbatch"
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
// which /metrics serves. ready, when not nil, is called once everything is
// up.
func serve(ctx context.Context, cfg *config, st *stack, reg *prometheus.Registry, ready func(apiAddr string)) error {
	log := st.log

	g, err := newGuards(reg, log)
	if err != nil {
		return err
	}
	t0 := time.Now()
	// Concurrent requests share Redis round trips (see internal/redisbatch).
	// RESP2: onair uses no RESP3 feature, and go-redis checks every RESP3
	// connection for push notifications before each reply. Context
	// deadlines bound socket reads too, so a stalled Redis costs a request
	// its deadline, not the 3 s read timeout.
	rdb, closeRedis := redisbatch.Wrap(&redis.UniversalOptions{Addrs: cfg.RedisAddrs, Password: cfg.RedisPassword, PoolSize: 32, Protocol: 2,
		ContextTimeoutEnabled: true}, redisbatch.Config{Outer: []redis.Hook{g.redis.RedisHook()}})
	if err := rdb.Ping(ctx).Err(); err != nil {
		closeRedis()
		return fmt.Errorf("cannot reach Redis at %s: %w", strings.Join(cfg.RedisAddrs, ","), err)
	}
	st.started("redis client", t0, func(context.Context) error { return closeRedis() })

	t0 = time.Now()
	ch, err := chdb.Open(chdb.Config{Addr: cfg.CHAddr, User: cfg.CHUser, Password: cfg.CHPassword})
	if err != nil {
		return err
	}
	if err := ch.Ping(ctx); err != nil {
		ch.Close()
		return fmt.Errorf("cannot reach ClickHouse at %s: %w", cfg.CHAddr, err)
	}
	st.started("clickhouse client", t0, func(context.Context) error { return ch.Close() })
	if _, err := migrate.Apply(ctx, ch, cfg.CHDatabase, log); err != nil {
		return err
	}

	t0 = time.Now()
	kcl, err := kgo.NewClient(
		kgo.SeedBrokers(cfg.KafkaBrokers...),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(2*time.Millisecond),
		kgo.RecordDeliveryTimeout(5*time.Second),
		kgo.ProducerBatchMaxBytes(1<<20),
	)
	if err != nil {
		return fmt.Errorf("cannot create Kafka client: %w", err)
	}
	if err := kafka.EnsureTopics(ctx, kcl, cfg.Partitions, kafka.TopicEvents, kafka.TopicPushes, kafka.TopicCatalog); err != nil {
		kcl.Close()
		return fmt.Errorf("cannot ensure Kafka topics on %s: %w", strings.Join(cfg.KafkaBrokers, ","), err)
	}
	st.started("kafka client", t0, func(ctx context.Context) error {
		err := kcl.Flush(ctx)
		kcl.Close()
		return err
	})

	radio, err := startRadio(ctx, cfg, st, kcl, rdb, ch, reg, log)
	if err != nil {
		return err
	}

	pageCache := cfg.PageCache
	if pageCache == 0 {
		pageCache = -1 // --history-page-cache 0: off (history.Config's 0 means its default)
	}
	hist, err := history.New(history.Config{Redis: rdb, Prefix: cfg.RedisPrefix, ClickHouse: g.clickhouse.ClickHouse(ch), Database: cfg.CHDatabase,
		MaxEntries: cfg.HistoryMax, PageCache: pageCache, Registerer: reg, Log: log})
	if err != nil {
		return err
	}
	// the Redis epoch tells a lost day marker from a new user (Touch)
	if _, err := hist.Epoch(ctx); err != nil {
		log.Warn("cannot read or create the Redis epoch; first_today is false for users without a day marker until it exists", "err", err)
	}

	ids, err := ingest.NewIDGen(uint16(cfg.NodeID))
	if err != nil {
		return err
	}
	prod, err := ingest.NewProducer(ingest.ProducerConfig{Client: kcl, Topic: kafka.TopicEvents, IDs: ids})
	if err != nil {
		return err
	}
	rooms, err := startBoard(cfg, st, boardDeps{rdb: rdb, kafka: kcl, ch: ch, events: prod, reg: reg, log: log})
	if err != nil {
		return err
	}

	if cfg.has("aggregate") {
		t0 = time.Now()
		agg, err := aggregate.New(aggregate.Config{Rooms: rooms,
			Brokers: cfg.KafkaBrokers, History: hist, Redis: rdb, Prefix: cfg.RedisPrefix,
			ClickHouse: ch, Database: cfg.CHDatabase, DedupeWindow: cfg.DedupeWindow,
			RedisFlush: cfg.RedisFlush, ClickHouseFlush: cfg.CHFlush, ProgressFlush: cfg.ProgressFlush, BatchRows: cfg.BatchRows,
			Registerer: reg, Log: log.With("component", "aggregate"),
		})
		if err != nil {
			return err
		}
		actx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- agg.Run(actx) }()
		st.started("aggregator", t0, func(ctx context.Context) error {
			cancel()
			select {
			case err := <-done:
				return err
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}

	apiAddr := ""
	if cfg.has("api") || cfg.has("push") {
		t0 = time.Now()
		var apiProd api.Producer
		var apiHist api.History
		if cfg.has("api") { // a push-only node serves /v1/ws, health and metrics
			apiProd, apiHist = prod, hist
		}
		srv, err := api.New(api.Config{
			Addr: cfg.HTTPAddr, AuthSecret: []byte(cfg.AuthSecret), DevLogin: cfg.Push.DevLogin,
			Redis: rdb, RatePrefix: cfg.RedisPrefix, RateLimit: cfg.RateLimit,
			Producer: apiProd, History: apiHist, Registry: reg, Log: log.With("component", "api"),
			Ready: []api.ReadyCheck{
				{Name: "redis", Check: func(ctx context.Context) error { return rdb.Ping(ctx).Err() }},
				{Name: "clickhouse", Check: g.clickhouse.ClickHouse(ch).Ping},
				{Name: "kafka", Check: func(ctx context.Context) error { return kcl.Ping(ctx) }},
			},
		})
		if err != nil {
			return err
		}
		if radio != nil {
			api.MountRadio(srv, radio)
		}
		if cfg.has("api") {
			api.MountRooms(srv, rooms)
			if err := mountAnalytics(srv, ch, cfg, reg, log); err != nil {
				return err
			}
		}
		if cfg.Pprof {
			srv.Router().GET("/debug/pprof/*any", gin.WrapH(http.DefaultServeMux))
		}
		mountPages(srv)
		if cfg.has("push") { // before Start: routes cannot be added to a serving router
			if err := startPush(ctx, cfg, st, srv, rdb, reg, log); err != nil {
				return err
			}
		}
		if err := srv.Start(); err != nil {
			return err
		}
		apiAddr = srv.Addr()
		st.started("http api", t0, srv.Shutdown)
	}
	if !cfg.has("api") && !cfg.has("push") && radio != nil {
		if apiAddr, err = radioOnlyAPI(cfg, st, radio, reg, nil, log); err != nil {
			return err
		}
	}
	if ready != nil {
		ready(apiAddr)
	}
	<-ctx.Done()
	log.Info("signal received, stopping")
	return nil
}

// authSecret returns the configured secret or, in dev mode, the one in
// <data-dir>/auth.secret, created on first use.
func authSecret(cfg *config, dev bool) (string, error) {
	if cfg.AuthSecret != "" {
		return cfg.AuthSecret, nil
	}
	if !dev {
		return "", errors.New("no auth secret: pass --auth-secret or set ONAIR_AUTH_SECRET")
	}
	path := filepath.Join(cfg.DataDir, "auth.secret")
	if b, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return strings.TrimSpace(string(b)), nil
	}
	buf := make([]byte, 32)
	if _, err := rand.Read(buf); err != nil {
		return "", err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return "", err
	}
	secret := hex.EncodeToString(buf)
	if err := os.WriteFile(path, []byte(secret+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("cannot write %s: %w", path, err)
	}
	return secret, nil
}

func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})), nil
}

// clickhouseFor opens ClickHouse for the one-shot commands.
func clickhouseFor(cfg *config) (driver.Conn, error) {
	return chdb.Open(chdb.Config{Addr: cfg.CHAddr, User: cfg.CHUser, Password: cfg.CHPassword})
}
