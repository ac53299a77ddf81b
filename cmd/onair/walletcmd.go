package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/onair/onair/internal/childproc"
	"github.com/onair/onair/internal/pgdb"
	"github.com/onair/onair/wallet"
)

// errDifferences makes `onair wallet reconcile` exit 1 after printing them.
var errDifferences = errors.New("the ledger does not reconcile")

// runWallet is `onair wallet reconcile`.
func runWallet(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	if len(args) == 0 || args[0] != "reconcile" {
		fmt.Fprintln(stderr, "usage: onair wallet reconcile [flags]")
		return errUsage
	}
	var cfg config
	defer func() { err = cfg.redactErr(err) }()
	fs := flag.NewFlagSet("onair wallet reconcile", flag.ContinueOnError)
	fs.SetOutput(stderr)
	// dev's addresses by default, like onair seed
	cfg.secretVar(fs, &cfg.PostgresDSN, "postgres-dsn", "PostgreSQL `dsn` of the ledger (default: onair dev's, "+childproc.PostgresDSN("127.0.0.1:15432", "onair")+")")
	fs.StringVar(&cfg.CHAddr, "clickhouse-addr", env("clickhouse-addr", "127.0.0.1:19000"), "ClickHouse native-protocol address (\"\" = skip the ClickHouse checks)")
	fs.StringVar(&cfg.CHDatabase, "clickhouse-database", env("clickhouse-database", "onair"), "ClickHouse database")
	fs.StringVar(&cfg.CHUser, "clickhouse-user", env("clickhouse-user", "default"), "ClickHouse user")
	cfg.secretVar(fs, &cfg.CHPassword, "clickhouse-password", "ClickHouse `password`")
	timeout := fs.Duration("timeout", 5*time.Minute, "give up after this long")
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	if cfg.PostgresDSN == "" {
		cfg.PostgresDSN = secret(childproc.PostgresDSN("127.0.0.1:15432", "onair"))
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	db, err := pgdb.Open(ctx, pgdb.Config{DSN: cfg.PostgresDSN.reveal(), Timeout: *timeout})
	if err != nil {
		return fmt.Errorf("cannot reach PostgreSQL: %w", err)
	}
	defer db.Close()
	var rc wallet.ReconcileConfig
	if cfg.CHAddr != "" {
		ch, err := clickhouseFor(&cfg)
		if err != nil {
			return err
		}
		defer ch.Close()
		rc.Copy = wallet.ClickHouseCopy{Conn: ch, Database: cfg.CHDatabase}
	}
	t0 := time.Now()
	rep, err := wallet.Reconcile(ctx, db, rc)
	if err != nil {
		return err
	}
	for _, d := range rep.Differences {
		fmt.Fprintln(stdout, "difference:", d)
	}
	fmt.Fprintf(stdout, "%d accounts, %d transfers, %d entries checked in %s: %d differences\n",
		rep.Accounts, rep.Transfers, rep.Entries, time.Since(t0).Round(time.Millisecond), len(rep.Differences))
	if len(rep.Differences) > 0 {
		return errDifferences
	}
	return nil
}
