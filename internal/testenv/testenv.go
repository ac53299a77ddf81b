// Package testenv gives tests real servers: one redis-server and one
// clickhouse-server shared by every test of a test binary (each test isolated
// by a key prefix or a database of its own, so tests can run in parallel),
// private servers for outage tests, and an in-memory kfake cluster per test.
//
// The shared servers start lazily, on free ports, in a temporary directory,
// and die with the test binary (Pdeathsig). Set ONAIR_TEST_REDIS_ADDR and
// ONAIR_TEST_CLICKHOUSE_ADDR to use servers started once for a whole
// `go test ./...` run instead.
package testenv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/onair/onair/internal/childproc"
	"github.com/onair/onair/internal/kafka"
)

// Environment variables naming servers to use instead of starting them.
const (
	EnvRedisAddr      = "ONAIR_TEST_REDIS_ADDR"
	EnvClickHouseAddr = "ONAIR_TEST_CLICKHOUSE_ADDR"
)

// seq numbers prefixes and databases; with the pid in the name, test
// binaries sharing one server (ONAIR_TEST_*_ADDR) do not collide either.
var seq atomic.Int64

func next() int64 { return seq.Add(1) }

// The shared servers start lazily, once per test binary. sync.OnceValues
// keeps the error too, so every test that needs a server which failed to
// start fails with the same reason.
var (
	sharedRedis = sync.OnceValues(func() (string, error) {
		if a := os.Getenv(EnvRedisAddr); a != "" {
			return a, nil
		}
		return startShared("redis", func(ctx context.Context, dir string) (*childproc.Server, error) {
			return childproc.StartRedis(ctx, childproc.RedisConfig{Dir: dir})
		})
	})
	sharedClickHouse = sync.OnceValues(func() (string, error) {
		if a := os.Getenv(EnvClickHouseAddr); a != "" {
			return a, nil
		}
		return startShared("clickhouse", func(ctx context.Context, dir string) (*childproc.Server, error) {
			return childproc.StartClickHouse(ctx, childproc.ClickHouseConfig{Dir: dir})
		})
	})
)

// RedisAddr returns the address of this test binary's shared redis-server,
// starting it on first use.
func RedisAddr(t testing.TB) string {
	t.Helper()
	addr, err := sharedRedis()
	if err != nil {
		t.Fatalf("testenv: shared redis-server: %v", err)
	}
	return addr
}

// ClickHouseAddr returns the native-protocol address of this test binary's
// shared clickhouse-server, starting it on first use.
func ClickHouseAddr(t testing.TB) string {
	t.Helper()
	addr, err := sharedClickHouse()
	if err != nil {
		t.Fatalf("testenv: shared clickhouse-server: %v", err)
	}
	return addr
}

// startShared starts a server that lives as long as the test binary: no
// test owns it, so nothing stops it; Pdeathsig kills it when the binary
// exits and the next binary's sweepStale removes its directory.
func startShared(name string, start func(context.Context, string) (*childproc.Server, error)) (string, error) {
	if err := checkBinary(name); err != nil {
		return "", err
	}
	root, err := sharedRoot()
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	srv, err := start(ctx, filepath.Join(root, name))
	if err != nil {
		return "", err
	}
	return srv.Addr(), nil
}

// sharedRoot is one temp directory per test binary, named after its pid so
// later binaries can tell when it is stale.
var sharedRoot = sync.OnceValues(func() (string, error) {
	sweepStale()
	return os.MkdirTemp("", fmt.Sprintf("onair-testenv-%d-", os.Getpid()))
})

// sweepStale removes the directories of test binaries that have exited. A
// test binary has no hook that runs when it exits, so its shared servers'
// directory cannot be removed by the binary itself.
func sweepStale() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "onair-testenv-*"))
	for _, d := range dirs {
		rest := strings.TrimPrefix(filepath.Base(d), "onair-testenv-")
		pidStr, _, _ := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidStr)
		if err != nil || pid == os.Getpid() {
			continue
		}
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); os.IsNotExist(err) {
			_ = os.RemoveAll(d)
		}
	}
}

// checkBinary turns a missing server binary into the one instruction that
// fixes it, instead of an exec error deep in a test.
func checkBinary(name string) error {
	var candidates []string
	switch name {
	case "redis":
		candidates = []string{"redis-server"}
	case "clickhouse":
		candidates = []string{"clickhouse-server", "/usr/sbin/clickhouse-server"}
	}
	for _, c := range candidates {
		if _, err := exec.LookPath(c); err == nil {
			return nil
		}
	}
	return fmt.Errorf("%s is not installed: run scripts/setup.sh", candidates[0])
}

// PrivateRedis starts a redis-server only this test uses, for outage tests
// that Stop and Start it; it is stopped at cleanup.
func PrivateRedis(t testing.TB) *childproc.Server {
	t.Helper()
	if err := checkBinary("redis"); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return private(t, func(ctx context.Context, dir string) (*childproc.Server, error) {
		return childproc.StartRedis(ctx, childproc.RedisConfig{Dir: dir})
	})
}

// PrivateClickHouse starts a clickhouse-server only this test uses (with no
// migrations applied), for outage tests that Stop and Start it; it is
// stopped at cleanup.
func PrivateClickHouse(t testing.TB) *childproc.Server {
	t.Helper()
	if err := checkBinary("clickhouse"); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return private(t, func(ctx context.Context, dir string) (*childproc.Server, error) {
		return childproc.StartClickHouse(ctx, childproc.ClickHouseConfig{Dir: dir})
	})
}

func private(t testing.TB, start func(context.Context, string) (*childproc.Server, error)) *childproc.Server {
	t.Helper()
	dir := t.TempDir() // registered first, so removed after the server stops
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	srv, err := start(ctx, dir)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Stop(ctx); err != nil {
			t.Logf("testenv: %v", err)
		}
	})
	return srv
}

// Kafka starts an in-memory kfake cluster for this test with topics events,
// pushes and catalog of the given number of partitions; closed at cleanup.
func Kafka(t testing.TB, partitions int) *kafka.Embedded {
	t.Helper()
	if partitions <= 0 {
		t.Fatalf("testenv: Kafka needs a positive partition count, got %d", partitions)
	}
	e, err := kafka.StartEmbedded(kafka.EmbeddedConfig{Addr: "127.0.0.1:0", Partitions: partitions})
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(e.Close)
	return e
}

// Wait polls cond every 10 ms until it returns true, or fails the test with
// the formatted message after timeout. Tests wait for effects this way
// instead of sleeping, so they are as fast as the code allows and fail
// loudly, not flakily, when it is slow.
func Wait(t testing.TB, timeout time.Duration, cond func() bool, format string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("testenv: timed out after %s: %s", timeout, fmt.Sprintf(format, args...))
		}
		time.Sleep(10 * time.Millisecond)
	}
}
