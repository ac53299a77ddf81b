package breaker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"github.com/onair/onair/internal/chdb"
	"github.com/onair/onair/internal/testenv"
)

func newBreaker(t *testing.T, name string, reg prometheus.Registerer) *Breaker {
	t.Helper()
	b, err := New(Config{Name: name, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// call runs f with a deadline and returns how long it took and its error.
func call(f func(ctx context.Context) error, deadline time.Duration) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	start := time.Now()
	err := f(ctx)
	return time.Since(start), err
}

// TestRedisOpensFailsFastAndCloses: against a real redis-server that is
// frozen (SIGSTOP), then dead (stopped), each call of a guarded client
// waits at most its deadline until five have failed; then calls fail at
// once with an OpenError naming redis, counted as rejected; once Redis is
// back, a probe closes the circuit within a few OpenFor.
func TestRedisOpensFailsFastAndCloses(t *testing.T) {
	t.Parallel()
	srv := testenv.PrivateRedis(t)
	reg := prometheus.NewRegistry()
	b := newBreaker(t, "redis", reg)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr(), ContextTimeoutEnabled: true})
	defer rdb.Close()
	rdb.AddHook(b.RedisHook())
	ping := func(ctx context.Context) error { return rdb.Ping(ctx).Err() }
	if _, err := call(ping, time.Second); err != nil {
		t.Fatal(err)
	}

	for _, fault := range []string{"frozen", "dead"} {
		switch fault {
		case "frozen":
			pid := srv.PID()
			if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { syscall.Kill(pid, syscall.SIGCONT) })
		case "dead":
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			if err := srv.Stop(ctx); err != nil {
				t.Fatal(err)
			}
			cancel()
		}
		// Calls meet the dependency, each failing within its deadline, until
		// failures have gone on for FailingFor (250 ms): then it opens.
		first := time.Now()
		for i := 0; b.Err() == nil; i++ {
			took, err := call(ping, 100*time.Millisecond)
			if err == nil || took > 300*time.Millisecond || time.Since(first) > time.Second {
				t.Fatalf("%s: call %d: %v after %s (%s since the first failure); want the dependency's failure within the deadline, and open after 250 ms of them",
					fault, i, err, took, time.Since(first))
			}
		}
		for i := range 20 {
			took, err := call(ping, 100*time.Millisecond)
			var oe *OpenError
			if !errors.As(err, &oe) || oe.Name != "redis" || oe.Cause == nil {
				// a half-open probe may still meet the dependency itself
				if i == 0 || err == nil {
					t.Fatalf("%s: call %d after 3 failures: %v, want an OpenError", fault, i, err)
				}
				continue
			}
			if took > 50*time.Millisecond { // at once: well under the 100 ms deadline, with room for -race on busy cores
				t.Fatalf("%s: rejected call took %s, want at once", fault, took)
			}
		}
		if b.Err() == nil {
			t.Fatalf("%s: Err() nil with the circuit open", fault)
		}
		switch fault {
		case "frozen":
			if err := syscall.Kill(srv.PID(), syscall.SIGCONT); err != nil {
				t.Fatal(err)
			}
		case "dead":
			if err := srv.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		back := time.Now()
		testenv.Wait(t, 5*time.Second, func() bool { _, err := call(ping, 100*time.Millisecond); return err == nil },
			"%s: a call to succeed once redis is back", fault)
		if took := time.Since(back); took > time.Second {
			t.Errorf("%s: circuit closed %s after redis came back, want within a few OpenFor", fault, took)
		}
		if b.Err() != nil {
			t.Fatalf("%s: Err() = %v after recovery", fault, b.Err())
		}
	}
	if n := testutil.ToFloat64(b.m.opened.WithLabelValues("redis")); n != 2 {
		t.Errorf("onair_breaker_opened_total = %v, want 2", n)
	}
	if n := testutil.ToFloat64(b.m.rejected.WithLabelValues("redis")); n < 20 {
		t.Errorf("onair_breaker_rejected_total = %v, want at least 20", n)
	}
}

// TestShortStallKeepsCircuitClosed: many calls failing together, for less
// than FailingFor, say nothing of a dependency that answers again: the
// circuit stays closed. Failures that go on for FailingFor open it.
func TestShortStallKeepsCircuitClosed(t *testing.T) {
	t.Parallel()
	b, err := New(Config{Name: "redis", FailingFor: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	fail := func(n int) {
		for range n {
			done, err := b.Allow()
			if err != nil {
				t.Fatalf("call refused: %v", err)
			}
			done(errors.New("i/o timeout"))
		}
	}
	fail(50) // a stall failing every call in flight at once
	if b.Err() != nil {
		t.Fatalf("50 failures within a moment opened the circuit: %v", b.Err())
	}
	done, _ := b.Allow()
	done(nil) // the dependency answers again: the run of failures ends
	fail(3)
	testenv.Wait(t, 2*time.Second, func() bool {
		if b.Err() != nil {
			return true
		}
		fail(1)
		return false
	}, "failures going on for FailingFor to open the circuit")
}

// TestRedisRepliesAreHealthy: errors that Redis itself answers (a missing
// key, WRONGTYPE, a failing script) never open the circuit.
func TestRedisRepliesAreHealthy(t *testing.T) {
	t.Parallel()
	rdb0, prefix := testenv.Redis(t)
	b := newBreaker(t, "redis", nil)
	rdb := redis.NewClient(&redis.Options{Addr: rdb0.Options().Addr})
	defer rdb.Close()
	rdb.AddHook(b.RedisHook())
	ctx := context.Background()
	if err := rdb.Set(ctx, prefix+"s", "x", 0).Err(); err != nil {
		t.Fatal(err)
	}
	for range 10 {
		if err := rdb.Get(ctx, prefix+"missing").Err(); !errors.Is(err, redis.Nil) {
			t.Fatalf("GET missing: %v", err)
		}
		if err := rdb.LPush(ctx, prefix+"s", "y").Err(); err == nil {
			t.Fatal("LPUSH on a string succeeded")
		}
		if err := rdb.Eval(ctx, "return redis.error_reply('nope')", nil).Err(); err == nil {
			t.Fatal("failing script succeeded")
		}
	}
	if b.Err() != nil {
		t.Fatalf("circuit open after Redis's own error replies: %v", b.Err())
	}
}

// TestClickHouseFrozenReturnsByDeadline: with clickhouse-server frozen,
// a guarded query on a fresh connection (whose handshake clickhouse-go
// bounds by its 5 s DialTimeout, not by the context) returns by its
// deadline; after five such failures queries fail at once; after SIGCONT
// they succeed again.
func TestClickHouseFrozenReturnsByDeadline(t *testing.T) {
	t.Parallel()
	srv := testenv.PrivateClickHouse(t)
	raw, err := chdb.Open(chdb.Config{Addr: srv.Addr()})
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	b := newBreaker(t, "clickhouse", nil)
	conn := b.ClickHouse(raw)
	one := func(ctx context.Context) error {
		var n uint8
		return conn.QueryRow(ctx, "SELECT 1").Scan(&n)
	}
	if _, err := call(one, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(srv.PID(), syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer syscall.Kill(srv.PID(), syscall.SIGCONT)
	// Query, Exec and PrepareBatch alike
	calls := []func(ctx context.Context) error{
		one,
		func(ctx context.Context) error { return conn.Exec(ctx, "SELECT 1") },
		func(ctx context.Context) error { _, err := conn.PrepareBatch(ctx, "INSERT INTO t (a)"); return err },
		one, one,
	}
	var met []string
	for i := range 5 {
		took, err := call(calls[i], 200*time.Millisecond)
		met = append(met, fmt.Sprintf("%v after %s", err, took.Round(time.Millisecond)))
		if err == nil || errors.Is(err, ErrOpen) || took > 400*time.Millisecond {
			t.Fatalf("call %d on a frozen server: %v after %s; want a timeout by the 200 ms deadline", i, err, took)
		}
	}
	took, err := call(one, 200*time.Millisecond)
	if !errors.Is(err, ErrOpen) || took > 100*time.Millisecond { // at once: half the 200 ms deadline
		t.Fatalf("after five failures (%s): %v after %s; want ErrOpen at once", strings.Join(met, "; "), err, took)
	}
	if err := syscall.Kill(srv.PID(), syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	testenv.Wait(t, 10*time.Second, func() bool { _, err := call(one, time.Second); return err == nil },
		"queries to succeed after SIGCONT")
}
