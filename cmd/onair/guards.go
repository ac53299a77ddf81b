package main

import (
	"context"
	"log/slog"
	"path/filepath"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/onair/onair/internal/breaker"
	"github.com/onair/onair/internal/childproc"
)

// guards are the circuit breakers of the dependencies the API calls on
// request paths: a Redis or ClickHouse that is down or stalled is noticed
// after a few failed calls, and then requests fail fast (ingest carries on
// without the rate limiter and Touch, history answers 503) instead of
// each one waiting for its deadline. One probe call per OpenFor finds out
// when it is back. The aggregator shares the Redis client, so its retries
// fail fast too; it keeps its own ClickHouse connection, whose batches
// have their own timeouts and backoff.
type guards struct {
	redis, clickhouse *breaker.Breaker
}

func newGuards(reg prometheus.Registerer, log *slog.Logger) (guards, error) {
	r, err := breaker.New(breaker.Config{Name: "redis", Registerer: reg, Log: log})
	if err != nil {
		return guards{}, err
	}
	c, err := breaker.New(breaker.Config{Name: "clickhouse", Registerer: reg, Log: log})
	if err != nil {
		return guards{}, err
	}
	return guards{redis: r, clickhouse: c}, nil
}

// superviseChild restarts a dev child server that dies (internal/childproc
// Supervise), counts the restarts in onair_childproc_restarts_total, and
// ends the dev stack through gaveUp when the child keeps crashing.
func superviseChild(ctx context.Context, s *childproc.Server, reg prometheus.Registerer, gaveUp context.CancelCauseFunc) error {
	name := filepath.Base(s.Dir()) // "redis", "clickhouse"
	err := reg.Register(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name:        "onair_childproc_restarts_total",
		Help:        "Times onair dev restarted a child server that had exited on its own.",
		ConstLabels: prometheus.Labels{"server": name},
	}, func() float64 { return float64(s.Restarts()) }))
	if err != nil {
		return err
	}
	s.Supervise(ctx, childproc.SuperviseConfig{OnGiveUp: gaveUp})
	return nil
}
