package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/onair/onair/api"
	"github.com/onair/onair/internal/chdb"
	"github.com/onair/onair/internal/kafka"
	"github.com/onair/onair/internal/migrate"
	"github.com/onair/onair/internal/pgdb"
	"github.com/onair/onair/internal/redisbatch"
)

// deps are what every role of a node shares, built once by connect and
// handed to each role's start function.
type deps struct {
	cfg    *config
	st     *stack
	reg    *prometheus.Registry
	log    *slog.Logger
	guards guards
	rdb    redis.UniversalClient
	ch     driver.Conn
	kcl    *kgo.Client
	pg     *pgdb.DB // nil on a node without --postgres-dsn
	// fatal stops the node with err, for a component that cannot go on.
	fatal func(err error)
	// opsAddr is the bound ops listener (metrics, pprof) once HTTP serves.
	opsAddr string
	// ready is what /readyz checks, whichever roles serve HTTP: every
	// role depends on Redis, ClickHouse and Kafka (radio too: its catalog
	// is a Kafka topic, its stations live in Redis, its rows go to
	// ClickHouse).
	ready []api.ReadyCheck
}

// connect starts the clients of Redis, ClickHouse (and applies the
// migrations), Kafka (and creates the topics) and PostgreSQL (and applies
// its migrations), each checked to answer.
func connect(ctx context.Context, cfg *config, st *stack, reg *prometheus.Registry) (*deps, error) {
	d := &deps{cfg: cfg, st: st, reg: reg, log: st.log}
	var err error
	if d.guards, err = newGuards(reg, d.log); err != nil {
		return nil, err
	}
	if err := d.connectRedis(ctx); err != nil {
		return nil, err
	}
	if err := d.connectClickHouse(ctx); err != nil {
		return nil, err
	}
	if _, err := migrate.Apply(ctx, d.ch, cfg.CHDatabase, d.log); err != nil {
		return nil, err
	}
	if err := d.connectKafka(ctx); err != nil {
		return nil, err
	}
	d.ready = []api.ReadyCheck{
		{Name: "redis", Check: d.redacted(func(ctx context.Context) error { return d.rdb.Ping(ctx).Err() })},
		{Name: "clickhouse", Check: d.redacted(d.guards.clickhouse.ClickHouse(d.ch).Ping)},
		{Name: "kafka", Check: d.redacted(d.kcl.Ping)},
	}
	if err := d.connectPostgres(ctx); err != nil {
		return nil, err
	}
	return d, nil
}

func (d *deps) connectRedis(ctx context.Context) error {
	t0 := time.Now()
	// Concurrent requests share Redis round trips (see internal/redisbatch).
	// RESP2: onair uses no RESP3 feature, and go-redis checks every RESP3
	// connection for push notifications before each reply. Context
	// deadlines bound socket reads too, so a stalled Redis costs a request
	// its deadline, not the 3 s read timeout.
	// go-redis has one logger per process: a node's is the last one set
	// (tests that run several in one process mix their go-redis lines).
	redis.SetLogger(redisLog{d.log})
	rdb, closeRedis := redisbatch.Wrap(&redis.UniversalOptions{Addrs: d.cfg.RedisAddrs, Password: d.cfg.RedisPassword.reveal(), PoolSize: 32, Protocol: 2,
		ContextTimeoutEnabled: true}, redisbatch.Config{Outer: []redis.Hook{d.guards.redis.RedisHook()}})
	if err := rdb.Ping(ctx).Err(); err != nil {
		closeRedis()
		return fmt.Errorf("cannot reach Redis at %s: %w", redactAddrs(d.cfg.RedisAddrs...), err)
	}
	d.rdb = rdb
	d.st.started("redis client", t0, func(context.Context) error { return closeRedis() })
	return nil
}

func (d *deps) connectClickHouse(ctx context.Context) error {
	t0 := time.Now()
	ch, err := clickhouseFor(d.cfg)
	if err != nil {
		return err
	}
	if err := ch.Ping(ctx); err != nil {
		ch.Close()
		return fmt.Errorf("cannot reach ClickHouse at %s: %w", redactAddrs(d.cfg.CHAddr), err)
	}
	d.ch = ch
	d.st.started("clickhouse client", t0, func(context.Context) error { return ch.Close() })
	return nil
}

func (d *deps) connectKafka(ctx context.Context) error {
	t0 := time.Now()
	kcl, err := kgo.NewClient(
		kgo.SeedBrokers(d.cfg.KafkaBrokers...),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(2*time.Millisecond),
		kgo.RecordDeliveryTimeout(5*time.Second),
		kgo.ProducerBatchMaxBytes(1<<20),
	)
	if err != nil {
		return fmt.Errorf("cannot create Kafka client: %w", err)
	}
	if err := kafka.EnsureTopics(ctx, kcl, d.cfg.Partitions, kafka.TopicEvents, kafka.TopicPushes, kafka.TopicCatalog); err != nil {
		kcl.Close()
		return fmt.Errorf("cannot ensure Kafka topics on %s: %w", redactAddrs(d.cfg.KafkaBrokers...), err)
	}
	d.kcl = kcl
	d.st.started("kafka client", t0, func(ctx context.Context) error {
		err := kcl.Flush(ctx)
		kcl.Close()
		return err
	})
	return nil
}

// redacted is check with the node's secrets masked in its error: /readyz
// answers anyone who asks, with each failure's message.
func (d *deps) redacted(check func(context.Context) error) func(context.Context) error {
	return func(ctx context.Context) error { return d.cfg.redactErr(check(ctx)) }
}

// clickhouseFor opens ClickHouse as cfg says (it does not dial yet).
func clickhouseFor(cfg *config) (driver.Conn, error) {
	ch, err := chdb.Open(chdb.Config{Addr: cfg.CHAddr, User: cfg.CHUser, Password: cfg.CHPassword.reveal()})
	return ch, cfg.redactErr(err)
}
