package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/onair/onair/api"
	"github.com/onair/onair/internal/breaker"
	"github.com/onair/onair/internal/childproc"
	"github.com/onair/onair/internal/nodeid"
	"github.com/onair/onair/internal/pgdb"
)

// startDevPostgres starts onair dev's child PostgreSQL on
// <data-dir>/postgres and points cfg at its database "onair", created on
// first start. PostgreSQL refuses to run as root, so as root it runs as
// the system user "postgres"; when that user cannot reach the data
// directory (a clone under a 0700 home), the cluster lives in
// /var/tmp/onair-postgres-<hash of the data directory> instead, which the
// banner shows and `make clean` removes.
func startDevPostgres(ctx context.Context, cfg *config, dataDir string, log *slog.Logger) (*childproc.Server, error) {
	dir := filepath.Join(dataDir, "postgres")
	if err := childproc.PostgresCanReach(dir); err != nil {
		sum := sha256.Sum256([]byte(dataDir))
		alt := filepath.Join("/var/tmp", "onair-postgres-"+hex.EncodeToString(sum[:6]))
		log.Warn("the PostgreSQL data lives outside the data directory", "reason", err, "dir", alt)
		dir = alt
	}
	ps, err := childproc.StartPostgres(ctx, childproc.PostgresConfig{Dir: dir, Port: cfg.DevPGPort, Log: log})
	if err != nil {
		return nil, err
	}
	dsn := childproc.PostgresDSN(ps.Addr(), "onair")
	if err := pgdb.EnsureDatabase(ctx, dsn); err != nil {
		_ = ps.Stop(context.Background())
		return nil, fmt.Errorf("cannot create the database onair: %w", err)
	}
	cfg.PostgresDSN = secret(dsn)
	return ps, nil
}

// connectPostgres opens the pool (guarded by the postgres breaker) and
// applies the migrations. Without --postgres-dsn (a node without the api
// role) it does nothing.
func (d *deps) connectPostgres(ctx context.Context) error {
	if d.cfg.PostgresDSN == "" {
		return nil
	}
	t0 := time.Now()
	b, err := breaker.New(breaker.Config{Name: "postgres", Registerer: d.reg, Log: d.log})
	if err != nil {
		return err
	}
	db, err := pgdb.Open(ctx, pgdb.Config{DSN: d.cfg.PostgresDSN.reveal(), Breaker: b})
	if err != nil {
		return fmt.Errorf("cannot reach PostgreSQL: %w", d.cfg.redactErr(err))
	}
	if _, err := pgdb.Migrate(ctx, db, d.log); err != nil {
		db.Close()
		return d.cfg.redactErr(err)
	}
	d.pg = db
	d.st.started("postgres client", t0, func(context.Context) error { db.Close(); return nil })
	d.ready = append(d.ready, api.ReadyCheck{Name: "postgres", Check: d.redacted(db.Ping)})
	return nil
}

// leaseNodeID leases the node id of server-assigned event ids (--node-id,
// or any free one) from PostgreSQL and keeps it renewed; losing the lease
// stops the node (d.fatal), before another process can take the id over.
// A node without PostgreSQL (no api role) falls back to the pid mod 1024:
// it assigns no event ids of its own that reach users.
func leaseNodeID(ctx context.Context, d *deps) (int, error) {
	if d.pg == nil {
		if d.cfg.NodeID >= 0 {
			return d.cfg.NodeID, nil
		}
		return os.Getpid() % nodeid.Max, nil
	}
	t0 := time.Now()
	l, err := nodeid.Acquire(ctx, d.pg, d.cfg.NodeID, 0, d.log)
	if err != nil {
		return 0, d.cfg.redactErr(err)
	}
	d.log.Info("node id leased", "node_id", l.ID())
	d.st.startedRun("node id lease", t0, func(ctx context.Context) error {
		err := l.Run(ctx)
		if err != nil {
			d.log.Error("stopping: the node id can no longer be trusted", "node_id", l.ID(), "err", err)
			d.fatal(err)
		}
		return err
	})
	return l.ID(), nil
}
