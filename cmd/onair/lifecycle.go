package main

import (
	"time"

	"github.com/onair/onair/api"
	"github.com/onair/onair/lifecycle"
)

// mountErase serves POST /v1/admin/users/{id}/erase on an api node.
func mountErase(srv *api.Server, d *deps, c *core) error {
	ec := lifecycle.EraseConfig{ClickHouse: d.ch, Database: d.cfg.CHDatabase, History: c.hist, Rooms: c.rooms,
		Redis: d.rdb, Prefix: d.cfg.RedisPrefix, Registerer: d.reg, Log: d.log.With("component", "erase")}
	if c.accts != nil {
		ec.Accounts = c.accts
	}
	e, err := lifecycle.NewEraser(ec)
	if err != nil {
		return err
	}
	api.MountErase(srv, e)
	return nil
}

// startRetention runs --retention on an aggregate node (nothing when 0).
func startRetention(d *deps) error {
	if d.cfg.Retention == 0 {
		return nil
	}
	t0 := time.Now()
	r, err := lifecycle.NewRetention(lifecycle.RetentionConfig{ClickHouse: d.ch, Database: d.cfg.CHDatabase, Keep: d.cfg.Retention,
		Registerer: d.reg, Log: d.log.With("component", "retention")})
	if err != nil {
		return err
	}
	d.st.startedRun("retention", t0, r.Run)
	return nil
}
