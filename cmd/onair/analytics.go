package main

import (
	"github.com/onair/onair/analytics"
	"github.com/onair/onair/api"
)

// mountAnalytics serves the analytics endpoints (/v1/admin/analytics/*)
// and page (/analytics/) on the API server.
func mountAnalytics(srv *api.Server, d *deps) error {
	st, err := analytics.New(analytics.Config{ClickHouse: d.ch, Database: d.cfg.CHDatabase, Registerer: d.reg, Log: d.log.With("component", "analytics")})
	if err != nil {
		return err
	}
	api.MountAnalytics(srv, st)
	return nil
}
