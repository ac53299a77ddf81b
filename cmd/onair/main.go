// Command onair is the one binary of onair: the embedded dev stack, the
// production roles, and the operator tools (token, migrate, loadtest).
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

const usage = `onair — the event backbone of an audio / video / live-streaming platform.

Usage:
  onair dev [flags]                 everything in one process: embedded Kafka, child
                                    redis-server and clickhouse-server, every role
                                    (api,aggregate,radio,push)
  onair serve --roles api,aggregate production mode against external Kafka/Redis/ClickHouse;
                                    roles: api, aggregate, radio, push
  onair token --user 42 [--role admin|service] [--ttl 24h]
                                    print a bearer token
  onair migrate [flags]             apply ClickHouse migrations and exit
  onair seed --events N [--users U --items I --days D --rate R --duration T]
                                    fill a running onair with demo data and traffic
  onair loadtest run|e2e|baseline|gifts|accounts|ws|slowloris|soak|faults|table|hello|wshello
                                    load tests and their tools (see 'onair loadtest -h')
  onair wallet reconcile [flags]    check the money ledger (exit 1 on any difference)
  onair version                     print the release, the commit and the Go that built it

Every flag can also be set as ONAIR_<FLAG> (e.g. ONAIR_KAFKA_BROKERS). Run
'onair <command> -h' for its flags (dev and serve: --pprof serves /debug/pprof/,
--retention drops months of analytics older than it).
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// defaultGOGC is the garbage collector's target for the servers unless
// GOGC is set: ingest and the aggregator allocate per event, and collecting
// 4× less often bought the end-to-end pipeline ~10 % throughput on 2 cores
// (BENCHMARKS.md) for a heap that stays in the hundreds of MB.
const defaultGOGC = 400

func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGOGC)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch cmd, rest := args[0], args[1:]; cmd {
	case "dev":
		tuneGC()
		err = runDev(ctx, rest, stdout, stderr)
	case "serve":
		tuneGC()
		err = runServe(ctx, rest, stderr)
	case "token":
		err = runToken(rest, stdout, stderr)
	case "migrate":
		err = runMigrate(ctx, rest, stdout, stderr)
	case "seed":
		err = runSeed(ctx, rest, stdout, stderr)
	case "loadtest":
		return runLoadtest(ctx, rest, stdout, stderr)
	case "wallet":
		err = runWallet(ctx, rest, stdout, stderr)
	case "version":
		err = runVersion(rest, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "onair: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	if err != nil {
		switch err {
		case errHelp:
			return 0
		case errUsage:
			return 2
		}
		fmt.Fprintf(stderr, "onair %s: %v\n", args[0], err)
		return 1
	}
	return 0
}
