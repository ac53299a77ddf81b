package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/onair/onair/api"
	"github.com/onair/onair/internal/childproc"
	"github.com/onair/onair/internal/kafka"
	"github.com/onair/onair/internal/migrate"
	"github.com/onair/onair/loadtest"
)

// errUsage means the flag package already printed what was wrong; errHelp
// that it printed the help that was asked for.
var (
	errUsage = errors.New("usage")
	errHelp  = errors.New("help")
)

func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return errHelp
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "unexpected argument %q\n", fs.Arg(0))
		return errUsage
	}
	return nil
}

// runDev starts the embedded stack (Kafka in-process, redis-server and
// clickhouse-server as children, data under --data-dir) and every role.
func runDev(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	var cfg config
	defer func() { err = cfg.redactErr(err) }()
	fs := flag.NewFlagSet("onair dev", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg.flags(fs, true)
	if err := parse(fs, args); err != nil {
		return err
	}
	log, err := cfg.newLogger(stderr)
	if err != nil {
		return err
	}
	if err := applyMemoryLimit(&cfg, devMemoryLimit, log); err != nil {
		return err
	}
	if cfg.AuthSecret, err = authSecret(&cfg, true); err != nil {
		return err
	}
	dataDir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return err
	}
	st := &stack{log: log}
	defer st.shutdown()
	reg := prometheus.NewRegistry()
	// A child that keeps crashing stops the whole stack, saying why.
	ctx, gaveUp := context.WithCancelCause(ctx)
	defer gaveUp(nil)

	t0 := time.Now()
	kf, err := kafka.StartEmbedded(kafka.EmbeddedConfig{
		Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(cfg.DevKafkaPort)), DataDir: filepath.Join(dataDir, "kafka"),
		Partitions: cfg.Partitions, SyncWrites: cfg.DevKafkaSyncWr, Log: log.With("component", "kafka"),
	})
	if err != nil {
		return err
	}
	st.started("embedded kafka", t0, func(context.Context) error { kf.Close(); return nil })
	cfg.KafkaBrokers = kf.Addrs()

	t0 = time.Now()
	rs, err := childproc.StartRedis(ctx, childproc.RedisConfig{Dir: filepath.Join(dataDir, "redis"), Port: cfg.DevRedisPort, Log: log})
	if err != nil {
		return err
	}
	st.started("redis-server", t0, rs.Stop)
	if err := superviseChild(ctx, rs, reg, gaveUp); err != nil {
		return err
	}
	cfg.RedisAddrs = []string{rs.Addr()}

	t0 = time.Now()
	cs, err := childproc.StartClickHouse(ctx, childproc.ClickHouseConfig{Dir: filepath.Join(dataDir, "clickhouse"),
		TCPPort: cfg.DevCHPort, HTTPPort: cfg.DevCHHTTPPort, Log: log})
	if err != nil {
		return err
	}
	st.started("clickhouse-server", t0, cs.Stop)
	if err := superviseChild(ctx, cs, reg, gaveUp); err != nil {
		return err
	}
	cfg.CHAddr = cs.Addr()

	t0 = time.Now()
	ps, err := startDevPostgres(ctx, &cfg, dataDir, log)
	if err != nil {
		return err
	}
	st.started("postgres", t0, ps.Stop)
	if err := superviseChild(ctx, ps, reg, gaveUp); err != nil {
		return err
	}

	if err := cfg.validate(); err != nil {
		return err
	}
	err = serve(ctx, &cfg, st, reg, func(apiAddr, opsAddr string) {
		fmt.Fprintf(stdout, `
onair dev is up.
  HTTP API     http://%s   (health: /healthz, /readyz)
  Ops          http://%s   (private: /metrics, /readyz with detail, /debug/pprof/ with --pprof)
  Kafka        %s
  Redis        %s
  ClickHouse   %s (native), %s (HTTP), database %s
  PostgreSQL   %s, database onair (data: %s)
  Data         %s

Live room page: http://%s/live/   (sign in with any phone: the code is shown)
Mint a token:   bin/onair token --user 42          (admin: --role admin)
Try it:         curl -H "Authorization: Bearer $(bin/onair token --user 42)" http://%s/v1/history
Ctrl-C stops everything.
`, apiAddr, opsAddr, kf.Addrs()[0], rs.Addr(), cs.Addr(), cs.HTTPAddr(), cfg.CHDatabase, ps.Addr(), ps.Dir(), dataDir, apiAddr, apiAddr)
	})
	if cause := context.Cause(ctx); errors.Is(cause, childproc.ErrGaveUp) {
		return cause
	}
	return err
}

// runServe runs the given roles against external Kafka, Redis and ClickHouse.
func runServe(ctx context.Context, args []string, stderr io.Writer) (err error) {
	var cfg config
	defer func() { err = cfg.redactErr(err) }()
	fs := flag.NewFlagSet("onair serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg.flags(fs, false)
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := cfg.validate(); err != nil {
		return err
	}
	log, err := cfg.newLogger(stderr)
	if err != nil {
		return err
	}
	if err := applyMemoryLimit(&cfg, 0, log); err != nil {
		return err
	}
	if cfg.has("api") || cfg.has("radio") || cfg.has("push") {
		if cfg.AuthSecret, err = authSecret(&cfg, false); err != nil {
			return err
		}
	}
	st := &stack{log: log}
	defer st.shutdown()
	if cfg.Push.DevLogin {
		warnDevLogin(log, stderr)
	}
	if cfg.Wallet.Provider == "dev" && cfg.has("api") {
		log.Warn("!!! --payment-provider dev: every recharge is paid at once, so any signed-in user mints coins. Never on a public deployment. !!!")
	}
	return serve(ctx, &cfg, st, prometheus.NewRegistry(), func(addr, ops string) {
		log.Info("onair serving", "roles", cfg.Roles, "http", addr, "ops", ops)
		if cfg.Push.DevLogin {
			warnDevLogin(log, stderr)
		}
	})
}

// warnDevLogin says, loudly, that `serve` runs with the dev sign-in: anyone
// asking for a code is answered the code, so anyone signs in as anyone; it must never face the
// public (issue 26). Said at start and again once serving, on stderr
// beside the log.
func warnDevLogin(log *slog.Logger, stderr io.Writer) {
	fmt.Fprintln(stderr, "*** WARNING: --dev-login is on: POST /v1/auth/sms-code answers the code to whoever asks, so anyone signs in as anyone. Never run this on a public deployment. ***")
	log.Warn("dev sign-in is on (--dev-login): sign-in codes are answered to whoever asks; never on a public deployment")
}

// runToken prints a bearer token.
func runToken(args []string, stdout, stderr io.Writer) (err error) {
	var cfg config
	defer func() { err = cfg.redactErr(err) }()
	fs := flag.NewFlagSet("onair token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	user := fs.Uint64("user", 0, "user id (the token's sub); required")
	role := fs.String("role", "", "optional role: admin or service")
	ttl := fs.Duration("ttl", 24*time.Hour, "how long the token is valid")
	cfg.secretVar(fs, &cfg.AuthSecret, "auth-secret", "HS256 `secret` (default: ONAIR_AUTH_SECRET, else <data-dir>/auth.secret)")
	fs.StringVar(&cfg.DataDir, "data-dir", env("data-dir", "var"), "dev data directory holding auth.secret")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *user == 0 {
		return errors.New("--user is required and must be a positive integer")
	}
	key, err := authSecret(&cfg, true)
	if err != nil {
		return err
	}
	tok, err := api.SignToken([]byte(key.reveal()), *user, *role, *ttl)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, tok)
	return nil
}

// runMigrate applies the ClickHouse migrations and exits.
func runMigrate(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	var cfg config
	defer func() { err = cfg.redactErr(err) }()
	fs := flag.NewFlagSet("onair migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg.flags(fs, true)
	if err := parse(fs, args); err != nil {
		return err
	}
	if len(cfg.envErrs) > 0 {
		return errors.Join(cfg.envErrs...)
	}
	log, err := cfg.newLogger(stderr)
	if err != nil {
		return err
	}
	ch, err := clickhouseFor(&cfg)
	if err != nil {
		return err
	}
	defer ch.Close()
	applied, err := migrate.Apply(ctx, ch, cfg.CHDatabase, log)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "database %s: %d migration(s) applied %v\n", cfg.CHDatabase, len(applied), applied)
	return nil
}

func runLoadtest(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return loadtest.Main(ctx, args, stdout, stderr)
}
