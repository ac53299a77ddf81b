package childproc

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/redis/go-redis/v9"
)

func need(t *testing.T, bins ...string) {
	t.Helper()
	for _, b := range bins {
		if _, err := exec.LookPath(b); err == nil {
			return
		}
	}
	t.Fatalf("%s not installed: run scripts/setup.sh", bins[0])
}

func stop(t *testing.T, s *Server) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Stop(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestRedisKeepsDataAcrossRestart(t *testing.T) {
	t.Parallel()
	need(t, "redis-server")
	ctx := context.Background()
	s, err := StartRedis(ctx, RedisConfig{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stop(t, s) })
	rdb := redis.NewClient(&redis.Options{Addr: s.Addr(), MaxRetries: -1})
	defer rdb.Close()
	if err := rdb.Set(ctx, "k", "v1", 0).Err(); err != nil {
		t.Fatal(err)
	}

	stop(t, s)
	stop(t, s) // idempotent
	if err := rdb.Ping(ctx).Err(); err == nil {
		t.Fatal("PING succeeded on a stopped server")
	}
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if got, err := rdb.Get(ctx, "k").Result(); err != nil || got != "v1" {
		t.Fatalf("after restart GET k = %q, %v; want v1", got, err)
	}
	if s.HTTPAddr() != "" {
		t.Fatalf("redis HTTPAddr = %q, want empty", s.HTTPAddr())
	}
}

func TestClickHouseKeepsDataAcrossRestart(t *testing.T) {
	t.Parallel()
	need(t, "clickhouse-server", "/usr/sbin/clickhouse-server")
	ctx := context.Background()
	s, err := StartClickHouse(ctx, ClickHouseConfig{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stop(t, s) })
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{s.Addr()}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.Exec(ctx, "CREATE TABLE default.t (id UInt64, s String) ENGINE = MergeTree ORDER BY id"); err != nil {
		t.Fatal(err)
	}
	b, err := conn.PrepareBatch(ctx, "INSERT INTO default.t (id, s)")
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Append(uint64(42), "kept"); err != nil {
		t.Fatal(err)
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}

	stop(t, s)
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	var got string
	if err := conn.QueryRow(ctx, "SELECT s FROM default.t WHERE id = 42").Scan(&got); err != nil || got != "kept" {
		t.Fatalf("after restart row 42 = %q, %v; want kept", got, err)
	}
	if s.HTTPAddr() == "" || s.HTTPAddr() == s.Addr() {
		t.Fatalf("HTTPAddr %q, Addr %q", s.HTTPAddr(), s.Addr())
	}
}

// TestTwoClickHousesAtOnce: two servers side by side collide on no port
// and no path: four distinct addresses, each server answering on both of
// its own, a table made in one absent from the other, and one still
// serving after the other stopped.
func TestTwoClickHousesAtOnce(t *testing.T) {
	t.Parallel()
	need(t, "clickhouse-server", "/usr/sbin/clickhouse-server")
	ctx := context.Background()
	var servers [2]*Server
	var conns [2]clickhouse.Conn
	addrs := map[string]bool{}
	for i := range servers {
		s, err := StartClickHouse(ctx, ClickHouseConfig{Dir: t.TempDir()})
		if err != nil {
			t.Fatalf("server #%d: %v", i, err)
		}
		t.Cleanup(func() { stop(t, s) })
		servers[i] = s
		addrs[s.Addr()], addrs[s.HTTPAddr()] = true, true
		conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{s.Addr()}, DialTimeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		conns[i] = conn
	}
	if len(addrs) != 4 {
		t.Fatalf("addresses %v: want four distinct ones", addrs)
	}
	for i, s := range servers {
		resp, err := http.Get("http://" + s.HTTPAddr() + "/ping")
		if err != nil {
			t.Fatalf("server #%d HTTP %s: %v", i, s.HTTPAddr(), err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.TrimSpace(string(body)) != "Ok." {
			t.Fatalf("server #%d HTTP /ping: %q", i, body)
		}
	}
	if err := conns[0].Exec(ctx, "CREATE TABLE default.only_in_first (id UInt64) ENGINE = Memory"); err != nil {
		t.Fatal(err)
	}
	exists := func(i int) uint8 {
		t.Helper()
		var n uint8
		if err := conns[i].QueryRow(ctx, "EXISTS TABLE default.only_in_first").Scan(&n); err != nil {
			t.Fatalf("server #%d: %v", i, err)
		}
		return n
	}
	if exists(0) != 1 || exists(1) != 0 {
		t.Fatalf("the table made in server #0: exists there %d, in server #1 %d; want 1 and 0 (separate data)", exists(0), exists(1))
	}
	stop(t, servers[0])
	if exists(1) != 0 {
		t.Fatal("server #1 changed when #0 stopped")
	}
}

func TestPortInUse(t *testing.T) {
	t.Parallel()
	need(t, "redis-server")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	_, err = StartRedis(context.Background(), RedisConfig{Dir: t.TempDir(), Port: port})
	if !errors.Is(err, ErrPortInUse) {
		t.Fatalf("StartRedis on a taken port: %v, want ErrPortInUse", err)
	}
	want := "port " + strconv.Itoa(port) + " is already in use (another redis-server or onair dev running?)"
	if err.Error() != want {
		t.Fatalf("error %q, want %q", err, want)
	}
	_, err = StartClickHouse(context.Background(), ClickHouseConfig{Dir: t.TempDir(), HTTPPort: port})
	if !errors.Is(err, ErrPortInUse) || !strings.Contains(err.Error(), "clickhouse-server") {
		t.Fatalf("StartClickHouse on a taken HTTP port: %v, want ErrPortInUse", err)
	}
}

// A server that exits at once must fail Start quickly with its own words.
func TestStartFailureShowsLog(t *testing.T) {
	t.Parallel()
	need(t, "redis-server")
	dir := t.TempDir()
	s, err := StartRedis(context.Background(), RedisConfig{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	stop(t, s)
	s.args = append(s.args, "--no-such-option", "x") // redis refuses to start
	start := time.Now()
	err = s.Start(context.Background())
	if err == nil {
		stop(t, s)
		t.Fatal("Start succeeded with a bad option")
	}
	if !strings.Contains(err.Error(), "exited before it was ready") || !strings.Contains(err.Error(), "no-such-option") {
		t.Fatalf("error does not carry the log tail: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("failure took %s, want it noticed at exit", d)
	}
}

// TestRetryPickedPorts: a server on picked ports whose port was taken
// meanwhile starts again (on new ports); one on configured ports does not,
// and other errors are returned at once.
func TestRetryPickedPorts(t *testing.T) {
	taken := &portInUseError{port: 1, name: "x"}
	calls := 0
	start := func(fails int, err error) func() (*Server, error) {
		calls = 0
		return func() (*Server, error) {
			calls++
			if calls <= fails {
				return nil, err
			}
			return &Server{}, nil
		}
	}
	if s, err := retryPicked(true, start(2, taken)); err != nil || s == nil || calls != 3 {
		t.Fatalf("picked ports, taken twice: %v after %d calls", err, calls)
	}
	if _, err := retryPicked(false, start(2, taken)); !errors.Is(err, ErrPortInUse) || calls != 1 {
		t.Fatalf("configured port taken: %v after %d calls, want ErrPortInUse after 1", err, calls)
	}
	other := errors.New("no such binary")
	if _, err := retryPicked(true, start(2, other)); err != other || calls != 1 {
		t.Fatalf("other error: %v after %d calls", err, calls)
	}
	if _, err := retryPicked(true, start(100, taken)); !errors.Is(err, ErrPortInUse) || calls != pickedPortAttempts {
		t.Fatalf("always taken: %v after %d calls, want %d", err, calls, pickedPortAttempts)
	}
}
