// Package loadtest drives onair's HTTP API with vegeta (as a library):
// scenarios of Zipf-distributed users and items with valid tokens
// (`onair loadtest run`), an end-to-end exactness and visibility check
// through Kafka and the aggregator into ClickHouse (`onair loadtest e2e`),
// a gin hello-world baseline to quote every figure against
// (`onair loadtest baseline`), and the writer of BENCHMARKS.md for
// `make bench` (`onair loadtest table`). Load only goes to loopback targets unless
// --allow-remote is given, and always stops at its duration.
package loadtest

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Exit codes of Main.
const (
	ExitOK    = 0 // the run delivered all its load
	ExitLost  = 1 // the run lost requests or events, or failed
	ExitUsage = 2 // bad flags
)

// Main runs `onair loadtest <sub> [flags]`; args are those after
// "loadtest". It returns the process exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return ExitUsage
	}
	sub, args := args[0], args[1:]
	switch sub {
	case "run":
		cfg, err := parseRun(args, stderr, os.Getenv, os.ReadFile)
		if err != nil {
			return usageErr(stderr, "run", err)
		}
		s, err := Run(ctx, cfg)
		return finish(stdout, stderr, cfg.ReportDir, err, s.Lost || s.Interrupted, func() { TextSummary(stdout, s) })
	case "e2e":
		cfg, err := parseE2E(args, stderr, os.Getenv, os.ReadFile)
		if err != nil {
			return usageErr(stderr, "e2e", err)
		}
		s, err := E2E(ctx, cfg)
		return finish(stdout, stderr, cfg.ReportDir, err, s.Lost || s.Run.Interrupted, func() { TextE2E(stdout, s) })
	case "baseline":
		cfg, err := parseBaseline(args, stderr)
		if err != nil {
			return usageErr(stderr, "baseline", err)
		}
		s, err := Baseline(ctx, cfg)
		return finish(stdout, stderr, cfg.ReportDir, err, s.Lost || s.Interrupted, func() { TextSummary(stdout, s) })
	case "gifts":
		return giftsMain(ctx, args, stdout, stderr)
	case "accounts":
		cfg, err := parseAccounts(args, stderr)
		if err != nil {
			return usageErr(stderr, "accounts", err)
		}
		s, err := Accounts(ctx, cfg)
		lost := false
		for _, m := range s.Routes {
			lost = lost || m.Success < 1
		}
		return finish(stdout, stderr, "", err, lost, func() { TextAccounts(stdout, cfg, s) })
	case "hello":
		return serveHello(ctx, args, stdout, stderr)
	case "faults":
		return faultsMain(ctx, args, stdout, stderr)
	case "wshello":
		return serveWSHello(ctx, args, stdout, stderr)
	case "ws":
		cfg, err := parseWS(args, stderr, os.Getenv, os.ReadFile)
		if err != nil {
			return usageErr(stderr, "ws", err)
		}
		s, err := WS(ctx, cfg)
		return finish(stdout, stderr, "", err, s.Lost > 0 || s.Duplicates > 0 || s.SendErrors > 0, func() { TextWS(stdout, cfg, s) })
	case "slowloris":
		cfg, err := parseSlowloris(args, stderr, os.Getenv, os.ReadFile)
		if err != nil {
			return usageErr(stderr, "slowloris", err)
		}
		s, err := Slowloris(ctx, cfg)
		return finish(stdout, stderr, "", err, s.ClosedInTime < s.Opened || s.Opened < s.Conns, func() { TextSlowloris(stdout, cfg, s) })
	case "soak":
		cfg, err := parseSoak(args, stderr, os.Getenv, os.ReadFile)
		if err != nil {
			return usageErr(stderr, "soak", err)
		}
		s, err := Soak(ctx, cfg)
		if err == nil {
			err = os.MkdirAll(cfg.Run.ReportDir, 0o755)
		}
		if err == nil {
			err = writeJSON(filepath.Join(cfg.Run.ReportDir, "soak.json"), s)
		}
		return finish(stdout, stderr, cfg.Run.ReportDir, err, len(s.Problems) > 0 || s.Interrupted, func() { TextSoak(stdout, s) })
	case "table":
		cfg, err := parseTable(args, stderr)
		if err != nil {
			return usageErr(stderr, "table", err)
		}
		if err := Table(stdout, cfg); err != nil {
			fmt.Fprintf(stderr, "onair loadtest table: %v\n", err)
			return ExitLost
		}
		return ExitOK
	case "help", "-h", "--help":
		usage(stdout)
		return ExitOK
	}
	fmt.Fprintf(stderr, "onair loadtest: unknown command %q\n", sub)
	usage(stderr)
	return ExitUsage
}

func finish(stdout, stderr io.Writer, dir string, err error, lost bool, text func()) int {
	if err != nil {
		fmt.Fprintf(stderr, "onair loadtest: %v\n", err)
		return ExitLost
	}
	text()
	if dir != "" {
		fmt.Fprintf(stdout, "report: %s\n", dir)
	}
	if lost {
		return ExitLost
	}
	return ExitOK
}

func usageErr(stderr io.Writer, sub string, err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return ExitOK
	}
	fmt.Fprintf(stderr, "onair loadtest %s: %v\n", sub, err)
	return ExitUsage
}

func usage(w io.Writer) {
	fmt.Fprintf(w, `usage: onair loadtest <command> [flags]

commands:
  run       --scenario %s --rate N --duration D [--report DIR]
            [--baseline [--rounds 5] [--ceiling]] [--seed --seed-items 24]
            drive the HTTP API; writes report.txt, results.bin, plot.html, summary.json;
            history, continue and mixed first seed every user with items (--seed=false: not)
  e2e       --rate N --duration D [--clickhouse 127.0.0.1:19000]
            batches through the whole pipeline, then check ClickHouse holds each
            accepted event exactly once; reports visibility latency
  baseline  --rate N --duration D [--in-process]
            the same load against a gin hello-world on 127.0.0.1, served by a
            process of its own ("onair loadtest hello") unless --in-process
  ws        --clients N --room R --rate M --duration D [--source kafka|api]
            N WebSocket viewers in room R while M danmaku/s are sent to it;
            reports deliveries/s, latency percentiles, losses and the
            server's memory per connection; --baseline: the same swarm against
            a bare gorilla/websocket broadcaster ("onair loadtest wshello")
  gifts     --rate N --duration D [--viewers 1000 --room 900 --anchor 900000 --rounds 3]
            paid gifts from N viewers into one anchor's room (recharges them first);
            latency percentiles per round; any answer but 202 is a loss
  slowloris [--conns 1000 --length 1048576 --read-timeout 30s --slack 5s]
            hold N uploads (POST /v1/events) that announce a 1 MiB body and send
            one byte; report the server's memory (heap + stacks, RSS, from
            --ops /metrics) before and at peak, and how many it closed within
            its read timeout
  accounts  --rate 500 --duration 30s [--users N]
            sign up N users (dev sign-in), then POST /v1/auth/login of existing
            users and GET /v1/me, half each; latency percentiles per route
  hello     [--addr 127.0.0.1:0]
            serve the baseline's hello-world endpoint; prints its address
  faults    --pid <onair dev pid> [--faults redis-freeze,redis-kill,clickhouse-freeze,clickhouse-kill]
            [--hold 5s] steady reports and history reads while each dependency of an onair dev
            stack is frozen (SIGSTOP) and killed; latencies, statuses, time to ready, lost events
  soak      [--scenario mixed] --rate N --duration D [--interval 1m --warmup 5m --flat 0.10]
            hold a scenario, sample the server's memory (RSS, Go heap, Redis) and
            p99 every interval; fail if memory keeps rising after the warm-up or any 5xx
  table     [--commit C --go-bench FILE --keep BENCHMARKS.md] DIR...
            write BENCHMARKS.md (to stdout) from the report directories of
            a bench run (summary.json / e2e.json, command.txt, exit.txt)

Targets must be loopback unless --allow-remote. Exit status: 0 ok, 1 lost
requests/events or failure, 2 bad flags. "onair loadtest <command> -h" lists flags.
`, strings.Join(Scenarios(), "|"))
}

// commonFlags registers the flags shared by every subcommand.
func commonFlags(fs *flag.FlagSet, cfg *RunConfig) {
	fs.IntVar(&cfg.Rate, "rate", 100, "requests per second; 0 = max rate with --workers concurrent requests")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "how long to send load (> 0)")
	fs.IntVar(&cfg.Workers, "workers", 0, fmt.Sprintf("max concurrent requests (default %d at --rate 0, else %d)", DefaultMaxWorkers, DefaultPacedMaxCap))
	fs.DurationVar(&cfg.Timeout, "timeout", DefaultTimeout, "per-request timeout")
	fs.BoolVar(&cfg.CPUProfile, "cpuprofile", false, "profile the load generator during the attack: <report>/<attack>.cpu.prof")
}

// targetFlags registers the flags of runs against onair.
func targetFlags(fs *flag.FlagSet, cfg *RunConfig, secret *string) {
	fs.IntVar(&cfg.Users, "users", DefaultUsers, "number of users (Zipf-distributed), ids 1..N")
	fs.IntVar(&cfg.Items, "items", DefaultItems, "number of items (Zipf-distributed), ids 1..N")
	fs.IntVar(&cfg.Batch, "batch", DefaultBatch, "events per POST /v1/events")
	fs.IntVar(&cfg.SessionItems, "session-items", 0, "shape each batch as a listening session over this many items, whose positions advance report by report (0: every event draws its own item, the worst case for write-back)")
	fs.StringVar(&cfg.Target, "target", DefaultTarget, "base URL of onair's HTTP API")
	fs.BoolVar(&cfg.AllowRemote, "allow-remote", false, "allow non-loopback targets (never on a shared network without asking)")
	fs.StringVar(secret, "token-secret", "", "HS256 token secret (default $ONAIR_AUTH_SECRET, else "+SecretFile+")")
}

func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("onair loadtest "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

func parseArgs(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return nil
}

// seedByDefault lists the scenarios that read history: they measure
// nothing useful against users without one, so --seed defaults on.
var seedByDefault = map[string]bool{"history": true, "continue": true, "mixed": true}

// helloCommand is how the CLI starts the baseline's hello-world server:
// this executable's "loadtest hello".
func helloCommand() ([]string, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("cannot find this executable to start the hello-world server: %w", err)
	}
	return []string{exe, "loadtest", "hello"}, nil
}

func defaultReportDir(name string) string {
	return filepath.Join("var", "loadtest", name+"-"+time.Now().Format("20060102-150405"))
}

func parseRun(args []string, stderr io.Writer, getenv func(string) string, readFile func(string) ([]byte, error)) (RunConfig, error) {
	var cfg RunConfig
	var secret string
	fs := newFlagSet("run", stderr)
	commonFlags(fs, &cfg)
	targetFlags(fs, &cfg, &secret)
	fs.StringVar(&cfg.Scenario, "scenario", "", "one of "+strings.Join(Scenarios(), ", ")+" (required)")
	fs.StringVar(&cfg.ReportDir, "report", "", "report directory (default var/loadtest/<scenario>-<time>)")
	fs.BoolVar(&cfg.Baseline, "baseline", false, "first run the hello-world baseline at the same rate, and report ratios")
	fs.IntVar(&cfg.Rounds, "rounds", 1, "with --baseline: run baseline and scenario this many times, alternating, and report the round with the median ratio")
	fs.BoolVar(&cfg.Ceiling, "ceiling", false, "with --baseline: also send the scenario's own requests to the hello-world server (it answers every route), the most any endpoint could reach with them")
	inProcess := fs.Bool("in-process", false, "with --baseline: serve the hello-world endpoint inside the load generator instead of a separate process")
	fs.BoolVar(&cfg.Seed, "seed", false, "first give every user --seed-items unfinished items and wait until they are readable (default on for history, continue, mixed)")
	fs.IntVar(&cfg.SeedItems, "seed-items", DefaultSeedItems, "items seeded per user, 1..100")
	fs.DurationVar(&cfg.SeedWait, "seed-wait", DefaultSeedWait, "how long to wait for seeded items to show in GET /v1/history")
	if err := parseArgs(fs, args); err != nil {
		return cfg, err
	}
	seedSet := false
	fs.Visit(func(f *flag.Flag) { seedSet = seedSet || f.Name == "seed" })
	if !seedSet {
		cfg.Seed = seedByDefault[cfg.Scenario]
	}
	if cfg.Baseline && !*inProcess {
		cmd, err := helloCommand()
		if err != nil {
			return cfg, err
		}
		cfg.HelloCommand = cmd
	}
	if cfg.Rounds == 0 {
		return cfg, fmt.Errorf("--rounds must be in 1..%d, got 0", MaxRounds)
	}
	if cfg.Scenario == "" {
		return cfg, fmt.Errorf("--scenario is required (one of %s)", strings.Join(Scenarios(), ", "))
	}
	if cfg.ReportDir == "" {
		cfg.ReportDir = defaultReportDir(cfg.Scenario)
	}
	cfg.Progress = stderr
	return cfg, finishTargetConfig(&cfg, secret, getenv, readFile)
}

// finishTargetConfig validates what the flags gave before the secret is
// looked up, so that a bad flag is reported as such.
func finishTargetConfig(cfg *RunConfig, secret string, getenv func(string) string, readFile func(string) ([]byte, error)) error {
	// Zero means "default" in RunConfig, but on the command line the
	// defaults are the flags' own: an explicit 0 is a mistake.
	switch {
	case cfg.Users == 0:
		return fmt.Errorf("--users must be in 1..%d, got 0", MaxUsers)
	case cfg.Items == 0:
		return fmt.Errorf("--items must be >= 1, got 0")
	case cfg.Batch == 0:
		return fmt.Errorf("--batch must be in 1..1000 events (the API's limit), got 0")
	}
	c := *cfg
	c.setDefaults()
	c.TokenSecret = []byte("-")
	if err := c.validate(true); err != nil {
		return err
	}
	b, err := resolveSecret(secret, getenv, readFile)
	cfg.TokenSecret = b
	return err
}

func parseE2E(args []string, stderr io.Writer, getenv func(string) string, readFile func(string) ([]byte, error)) (E2EConfig, error) {
	var cfg E2EConfig
	var secret string
	fs := newFlagSet("e2e", stderr)
	commonFlags(fs, &cfg.RunConfig)
	targetFlags(fs, &cfg.RunConfig, &secret)
	fs.StringVar(&cfg.ReportDir, "report", "", "report directory (default var/loadtest/e2e-<time>)")
	fs.StringVar(&cfg.ClickHouse, "clickhouse", DefaultClickHouse, "ClickHouse native address host:port")
	fs.StringVar(&cfg.Database, "database", DefaultDatabase, "ClickHouse database holding events")
	fs.StringVar(&cfg.CHUser, "ch-user", "default", "ClickHouse user")
	fs.StringVar(&cfg.CHPassword, "ch-password", "", "ClickHouse password (default $ONAIR_CLICKHOUSE_PASSWORD)")
	fs.DurationVar(&cfg.Wait, "wait", DefaultWait, "how long to wait for ClickHouse to hold every accepted event")
	fs.IntVar(&cfg.SampleEvery, "sample", DefaultSampleEvery, "probe visibility on one write in N (negative: none)")
	fs.DurationVar(&cfg.VisibilityTimeout, "visibility-timeout", DefaultVisibilityTimeout, "give up on one probe after this long")
	if err := parseArgs(fs, args); err != nil {
		return cfg, err
	}
	if cfg.CHPassword == "" {
		cfg.CHPassword = getenv("ONAIR_CLICKHOUSE_PASSWORD")
	}
	if cfg.ReportDir == "" {
		cfg.ReportDir = defaultReportDir("e2e")
	}
	cfg.Progress = stderr
	cfg.Scenario = "batch"
	if err := finishTargetConfig(&cfg.RunConfig, secret, getenv, readFile); err != nil {
		return cfg, err
	}
	c := cfg
	c.setDefaults()
	return cfg, c.validate()
}

func parseBaseline(args []string, stderr io.Writer) (RunConfig, error) {
	var cfg RunConfig
	fs := newFlagSet("baseline", stderr)
	commonFlags(fs, &cfg)
	fs.StringVar(&cfg.ReportDir, "report", "", "report directory (default var/loadtest/baseline-<time>)")
	inProcess := fs.Bool("in-process", false, "serve the hello-world endpoint inside the load generator instead of a separate process")
	if err := parseArgs(fs, args); err != nil {
		return cfg, err
	}
	if !*inProcess {
		cmd, err := helloCommand()
		if err != nil {
			return cfg, err
		}
		cfg.HelloCommand = cmd
	}
	if cfg.ReportDir == "" {
		cfg.ReportDir = defaultReportDir("baseline")
	}
	cfg.Progress = stderr
	c := cfg
	c.setDefaults()
	return cfg, c.validate(false)
}
