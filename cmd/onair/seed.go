package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/onair/onair/seed"
)

// runSeed is `onair seed`: the demo catalog, stations and rooms, then
// synthetic traffic, through a running onair's HTTP API.
func runSeed(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	var cfg config
	defer func() { err = cfg.redactErr(err) }()
	var sc seed.Config
	fs := flag.NewFlagSet("onair seed", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&sc.Gen.Events, "events", 100_000, "events to send (> 0)")
	fs.IntVar(&sc.Gen.Users, "users", seed.DefaultUsers, "users (Zipf-distributed ids 1..N)")
	fs.IntVar(&sc.Gen.Items, "items", seed.DefaultItems, "catalog items (Zipf-distributed ids 1..N)")
	fs.IntVar(&sc.Gen.Days, "days", seed.DefaultDays, fmt.Sprintf("days of traffic back from now (1..%d)", seed.MaxDays))
	fs.IntVar(&sc.Gen.Stations, "stations", seed.DefaultStations, "radio stations")
	fs.IntVar(&sc.Gen.Rooms, "rooms", seed.DefaultRooms, "live rooms")
	fs.Int64Var(&sc.Gen.Seed, "seed", 1, "random seed: the same flags send the same traffic")
	fs.IntVar(&sc.Rate, "rate", 0, "events per second at most (0 = as fast as onair takes them)")
	fs.DurationVar(&sc.Duration, "duration", 0, "stop sending after this long (0 = when --events are sent)")
	fs.DurationVar(&sc.VerifyTimeout, "verify-timeout", seed.DefaultVerifyTimeout, "how long to wait for ClickHouse to hold every acknowledged event")
	target := fs.String("target", env("seed-target", "http://127.0.0.1:8080"), "onair's base URL")
	verify := fs.Bool("verify", true, "check in ClickHouse that every acknowledged event arrived")
	// only the flags seed uses, with the meaning and defaults of dev's
	cfg.secretVar(fs, &cfg.AuthSecret, "auth-secret", "HS256 `secret` of the tokens seed signs (default: ONAIR_AUTH_SECRET, else <data-dir>/auth.secret)")
	fs.StringVar(&cfg.DataDir, "data-dir", env("data-dir", "var"), "dev data directory holding auth.secret")
	fs.StringVar(&cfg.CHAddr, "clickhouse-addr", env("clickhouse-addr", "127.0.0.1:19000"), "ClickHouse native-protocol address, for --verify")
	fs.StringVar(&cfg.CHDatabase, "clickhouse-database", env("clickhouse-database", "onair"), "ClickHouse database")
	fs.StringVar(&cfg.CHUser, "clickhouse-user", env("clickhouse-user", "default"), "ClickHouse user")
	cfg.secretVar(fs, &cfg.CHPassword, "clickhouse-password", "ClickHouse `password`")
	fs.StringVar(&cfg.LogLevel, "log-level", env("log-level", "info"), "debug, info, warn or error")
	if err := parse(fs, args); err != nil {
		return err
	}
	key, err := authSecret(&cfg, true)
	if err != nil {
		return err
	}
	sc.Target, sc.Secret = strings.TrimSuffix(*target, "/"), []byte(key.reveal())
	sc.Progress = stderr
	if f, ok := stderr.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			sc.Terminal = true
		}
	}
	if sc.Log, err = cfg.newLogger(stderr); err != nil {
		return err
	}
	if *verify {
		ch, err := clickhouseFor(&cfg)
		if err != nil {
			return err
		}
		defer ch.Close()
		sc.ClickHouse, sc.Database = ch, cfg.CHDatabase
	}
	s, err := seed.Run(ctx, sc)
	printSeedSummary(stdout, s, *verify)
	return err
}

func printSeedSummary(w io.Writer, s seed.Summary, verify bool) {
	if s.RunID == "" {
		return // the flags were refused: nothing ran
	}
	fmt.Fprintf(w, "seed run %s\n", s.RunID)
	for _, p := range s.Demo {
		fmt.Fprintf(w, "  %-24s %s\n", p.Name+":", p.Status)
	}
	stopped := ""
	if s.Stopped {
		stopped = " (stopped at --duration)"
	}
	fmt.Fprintf(w, "  %-24s %d of %d generated acknowledged in %s%s: %.0f events/s, %d requests, %d retries\n",
		"events:", s.Acked, s.Generated, s.Elapsed.Round(time.Millisecond), stopped, s.Rate, s.Requests, s.Retries)
	switch {
	case !verify:
		fmt.Fprintf(w, "  %-24s not checked (--verify=false)\n", "clickhouse:")
	case s.Verified:
		fmt.Fprintf(w, "  %-24s %d of the run's events in onair.events: %d lost, %d extra\n", "clickhouse:", s.InClickHouse, s.Lost, s.Extra)
	}
}
