package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/onair/onair/api"
	"github.com/onair/onair/internal/kafka"
	"github.com/onair/onair/recommend"
)

// startRadio starts the radio role: the catalog follower (caught up before
// it returns), the station actors, listener feedback and onair.catalog
// rows. It returns nil when the role is not configured.
func startRadio(ctx context.Context, cfg *config, st *stack, kcl *kgo.Client, rdb redis.UniversalClient,
	ch driver.Conn, reg prometheus.Registerer, log *slog.Logger) (*recommend.Engine, error) {
	if !cfg.has("radio") {
		return nil, nil
	}
	t0 := time.Now()
	eng, err := recommend.New(recommend.Config{
		Brokers: cfg.KafkaBrokers, Producer: kcl, Topic: kafka.TopicCatalog, Partitions: cfg.Partitions,
		EventsTopic: kafka.TopicEvents, Redis: rdb, Prefix: cfg.RedisPrefix,
		ClickHouse: ch, Database: cfg.CHDatabase, Registerer: reg, Log: log.With("component", "radio"),
	})
	if err != nil {
		return nil, err
	}
	if err := eng.Start(ctx); err != nil {
		_ = eng.Stop(context.Background())
		return nil, err
	}
	st.started("radio", t0, eng.Stop)
	return eng, nil
}

// radioOnlyAPI serves the radio routes (and health, metrics) when the
// process runs the radio role without the api role.
func radioOnlyAPI(cfg *config, st *stack, eng *recommend.Engine, reg *prometheus.Registry, ready []api.ReadyCheck, log *slog.Logger) (string, error) {
	t0 := time.Now()
	srv, err := api.New(api.Config{Addr: cfg.HTTPAddr, AuthSecret: []byte(cfg.AuthSecret),
		Registry: reg, Log: log.With("component", "api"), Ready: ready})
	if err != nil {
		return "", err
	}
	api.MountRadio(srv, eng)
	if err := srv.Start(); err != nil {
		return "", err
	}
	st.started("http api (radio)", t0, srv.Shutdown)
	return srv.Addr(), nil
}
