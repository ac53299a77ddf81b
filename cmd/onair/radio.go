package main

import (
	"context"
	"time"

	"github.com/onair/onair/api"
	"github.com/onair/onair/internal/kafka"
	"github.com/onair/onair/recommend"
)

// startRadio starts the radio role: the catalog follower (caught up before
// it returns), the station actors, listener feedback and onair.catalog
// rows. It returns nil when the role is not configured.
func startRadio(ctx context.Context, d *deps) (*recommend.Engine, error) {
	if !d.cfg.has("radio") {
		return nil, nil
	}
	t0 := time.Now()
	cfg := d.cfg
	eng, err := recommend.New(recommend.Config{
		Brokers: cfg.KafkaBrokers, Producer: d.kcl, Topic: kafka.TopicCatalog, Partitions: cfg.Partitions,
		EventsTopic: kafka.TopicEvents, Redis: d.rdb, Prefix: cfg.RedisPrefix,
		ClickHouse: d.ch, Database: cfg.CHDatabase, Registerer: d.reg, Log: d.log.With("component", "radio"),
	})
	if err != nil {
		return nil, err
	}
	if err := eng.Start(ctx); err != nil {
		_ = eng.Stop(context.Background())
		return nil, err
	}
	d.st.started("radio", t0, eng.Stop)
	return eng, nil
}

// radioOnlyAPI serves the radio routes (and health, metrics) when the
// process runs the radio role without the api role. Its /readyz checks
// what radio depends on.
func radioOnlyAPI(d *deps, eng *recommend.Engine) (string, error) {
	t0 := time.Now()
	srv, err := api.New(api.Config{Addr: d.cfg.HTTPAddr, OpsAddr: d.cfg.OpsAddr, ReadTimeout: d.cfg.ReadTimeout, AuthSecret: []byte(d.cfg.AuthSecret.reveal()), PreviousSecrets: d.cfg.previousSecrets(),
		Registry: d.reg, Log: d.log.With("component", "api"), Ready: d.ready})
	if err != nil {
		return "", err
	}
	api.MountRadio(srv, eng)
	if err := srv.Start(); err != nil {
		return "", err
	}
	d.st.started("http api (radio)", t0, srv.Shutdown)
	d.opsAddr = srv.OpsAddr()
	return srv.Addr(), nil
}
