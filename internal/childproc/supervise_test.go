package childproc

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// waitFor polls cond every 10 ms until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestSuperviseRestartsKilledServer: a supervised redis-server killed with
// SIGKILL is started again on its port with its data, and counted; one
// stopped with Stop stays down.
func TestSuperviseRestartsKilledServer(t *testing.T) {
	t.Parallel()
	need(t, "redis-server")
	ctx := context.Background()
	s, err := StartRedis(ctx, RedisConfig{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stop(t, s) })
	restarted := make(chan struct{}, 10)
	s.Supervise(ctx, SuperviseConfig{MinBackoff: 20 * time.Millisecond, OnRestart: func() { restarted <- struct{}{} }})
	rdb := redis.NewClient(&redis.Options{Addr: s.Addr(), MaxRetries: -1})
	defer rdb.Close()
	if err := rdb.Set(ctx, "k", "v1", 0).Err(); err != nil {
		t.Fatal(err)
	}

	for round := 1; round <= 2; round++ {
		pid := s.PID()
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		select {
		case <-restarted:
		case <-time.After(15 * time.Second):
			t.Fatalf("round %d: killed redis-server (pid %d) not restarted within 15 s", round, pid)
		}
		if s.PID() == pid || s.PID() == 0 {
			t.Fatalf("round %d: pid %d after the restart, killed %d", round, s.PID(), pid)
		}
		if got := s.Restarts(); got != int64(round) {
			t.Fatalf("round %d: Restarts() = %d", round, got)
		}
		waitFor(t, 5*time.Second, func() bool { v, err := rdb.Get(ctx, "k").Result(); return err == nil && v == "v1" },
			"the restarted redis-server to serve k = v1 (its data)")
	}

	stop(t, s)
	// A Stop is not a crash: the supervisor ends instead of restarting.
	// The restart would come after MinBackoff; give it ten times that.
	time.Sleep(200 * time.Millisecond)
	if s.PID() != 0 || s.Restarts() != 2 {
		t.Fatalf("after Stop: pid %d, restarts %d; want 0 and 2", s.PID(), s.Restarts())
	}
}

// TestSuperviseGivesUpOnFastCrashes: a server that cannot start again
// (here: its config broken after start) is retried MaxFastCrashes times
// with backoff, then given up with an error that names it and quotes its
// log.
func TestSuperviseGivesUpOnFastCrashes(t *testing.T) {
	t.Parallel()
	need(t, "redis-server")
	ctx := context.Background()
	s, err := StartRedis(ctx, RedisConfig{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stop(t, s) })
	gaveUp := make(chan error, 1)
	s.Supervise(ctx, SuperviseConfig{MinBackoff: 10 * time.Millisecond, MaxFastCrashes: 3, OnGiveUp: func(err error) { gaveUp <- err }})
	if err := os.WriteFile(filepath.Join(s.Dir(), "redis.conf"), []byte("no-such-directive yes\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := syscall.Kill(s.PID(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-gaveUp:
		if !errors.Is(err, ErrGaveUp) || !strings.Contains(err.Error(), "redis-server") ||
			!strings.Contains(err.Error(), "3 times") || !strings.Contains(err.Error(), "no-such-directive") {
			t.Fatalf("give-up error does not say what crashed, how often and why:\n%v", err)
		}
		// 3 attempts after 10, 20 and 40 ms: backed off, not spinning.
		if took := time.Since(start); took < 70*time.Millisecond {
			t.Fatalf("gave up after %s: the restarts did not back off", took)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the supervisor did not give up within 30 s")
	}
	if s.PID() != 0 || s.Restarts() != 0 {
		t.Fatalf("after giving up: pid %d, restarts %d; want 0, 0", s.PID(), s.Restarts())
	}
}
