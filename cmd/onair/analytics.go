package main

import (
	"log/slog"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/onair/onair/analytics"
	"github.com/onair/onair/api"
)

// mountAnalytics serves the analytics endpoints (/v1/admin/analytics/*)
// and page (/analytics/) on the API server.
func mountAnalytics(srv *api.Server, ch driver.Conn, cfg *config, reg prometheus.Registerer, log *slog.Logger) error {
	st, err := analytics.New(analytics.Config{ClickHouse: ch, Database: cfg.CHDatabase, Registerer: reg, Log: log.With("component", "analytics")})
	if err != nil {
		return err
	}
	api.MountAnalytics(srv, st)
	return nil
}
