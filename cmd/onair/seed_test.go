package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/onair/onair/internal/testenv"
)

// seedCmd runs `onair seed` in-process.
func seedCmd(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	code = run(ctx, append([]string{"seed"}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

func TestSeedFlagErrors(t *testing.T) {
	t.Parallel()
	f := func(want string, args ...string) {
		t.Helper()
		code, _, stderr := seedCmd(t, append([]string{"--auth-secret", "x", "--target", "http://127.0.0.1:1", "--verify=false"}, args...)...)
		if code == 0 || !strings.Contains(stderr, want) {
			t.Errorf("onair seed %v: exit %d, stderr %q; want a failure naming %q", args, code, stderr, want)
		}
	}
	f("--events must be > 0", "--events", "0")
	f("--days must be 1..29", "--days", "40")
	f("--rate must be >= 0", "--rate", "-5")
	f("--duration must be >= 0", "--duration", "-1s")
	f("flag provided but not defined: -bogus", "--bogus")
	f("invalid value \"many\" for flag -events", "--events", "many")
}

// TestSeedStopsAtDurationAndReportsLoss seeds an onair that runs no
// aggregator: its events are acknowledged (they are in Kafka) but never
// reach ClickHouse, so seed must say they are missing and exit non-zero.
// --rate and --duration end the posting long before --events; the demo
// routes this build lacks are reported as skipped.
func TestSeedStopsAtDurationAndReportsLoss(t *testing.T) {
	t.Parallel()
	kf := testenv.Kafka(t, 2)
	s := startServe(t, kf.Addrs())
	code, stdout, stderr := seedCmd(t, "--target", s.url, "--auth-secret", string(s.secret),
		"--clickhouse-addr", testenv.ClickHouseAddr(t), "--clickhouse-database", s.db,
		"--events", "1000000", "--rate", "3000", "--duration", "1s", "--verify-timeout", "1s")
	for _, want := range []string{"stopped at --duration", "route not available (404 PUT /v1/admin/catalog), skipped", "lost"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("summary lacks %q:\n%s", want, stdout)
		}
	}
	if code != 1 || !strings.Contains(stderr, "acknowledged events missing from ClickHouse") {
		t.Fatalf("exit %d, stderr %q; want 1 and the loss named", code, stderr)
	}
}
