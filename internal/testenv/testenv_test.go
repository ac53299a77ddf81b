package testenv_test

import (
	"context"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/onair/onair/internal/kafka"
	"github.com/onair/onair/internal/testenv"
)

// seen collects what the parallel subtests got, to check they differ.
type seen struct {
	mu       sync.Mutex
	prefixes map[string]bool
	dbs      map[string]bool
}

func TestParallelIsolation(t *testing.T) {
	s := &seen{prefixes: map[string]bool{}, dbs: map[string]bool{}}
	t.Run("group", func(t *testing.T) {
		for _, name := range []string{"a", "b"} {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				isolated(t, s)
			})
		}
	})
	if len(s.prefixes) != 2 || len(s.dbs) != 2 {
		t.Fatalf("parallel tests shared a prefix or database: prefixes %v, dbs %v", s.prefixes, s.dbs)
	}
}

func isolated(t *testing.T, s *seen) {
	ctx := context.Background()
	rdb, prefix := testenv.Redis(t)
	conn, db := testenv.ClickHouse(t)
	s.mu.Lock()
	s.prefixes[prefix] = true
	s.dbs[db] = true
	s.mu.Unlock()

	if !strings.HasSuffix(prefix, ":") {
		t.Fatalf("prefix %q should end in ':'", prefix)
	}
	if err := rdb.Set(ctx, prefix+"k", prefix, 0).Err(); err != nil {
		t.Fatal(err)
	}
	if got, err := rdb.Get(ctx, prefix+"k").Result(); err != nil || got != prefix {
		t.Fatalf("GET %sk = %q, %v; want %q", prefix, got, err, prefix)
	}

	// The migrations ran: the events table exists in this test's database
	// and is reachable unqualified through the returned connection.
	var n uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM system.tables WHERE database = ? AND name = 'events'", db).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("%s.events: found %d tables, want 1", db, n)
	}
	if err := conn.Exec(ctx, "INSERT INTO events (event_id, type, user_id) SELECT 'e1', 'play', 7"); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(ctx, "SELECT count() FROM "+db+".events").Scan(&n); err != nil || n != 1 {
		t.Fatalf("%s.events has %d rows (%v), want 1", db, n, err)
	}
}

func TestKafka(t *testing.T) {
	t.Parallel()
	e := testenv.Kafka(t, 3)
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.Addrs()...), kgo.ConsumeTopics(kafka.TopicPushes))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: kafka.TopicPushes, Key: []byte("room1"), Value: []byte("hi")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	fs := cl.PollFetches(ctx)
	if errs := fs.Errors(); len(errs) > 0 {
		t.Fatal(errs)
	}
	if recs := fs.Records(); len(recs) != 1 || string(recs[0].Value) != "hi" {
		t.Fatalf("fetched %v, want one record \"hi\"", recs)
	}
}

// TestPrivateRedisOutage: what outage tests rely on. While the private
// server is stopped a client's commands fail; after Start it serves again
// on the same address, with the data written before the outage.
func TestPrivateRedisOutage(t *testing.T) {
	t.Parallel()
	srv := testenv.PrivateRedis(t)
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr(), MaxRetries: -1})
	t.Cleanup(func() { rdb.Close() })
	if err := rdb.Set(ctx, "before", "outage", 0).Err(); err != nil {
		t.Fatal(err)
	}
	addr := srv.Addr()
	if err := srv.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := rdb.Ping(ctx).Err(); err == nil {
		t.Fatal("PING succeeded while the server was stopped: no outage")
	}
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if srv.Addr() != addr {
		t.Fatalf("after the outage the server listens on %s, was %s", srv.Addr(), addr)
	}
	if v, err := rdb.Get(ctx, "before").Result(); err != nil || v != "outage" {
		t.Fatalf("after the outage GET before = %q, %v; want the value written before it", v, err)
	}
}

func TestWait(t *testing.T) {
	start := time.Now()
	calls := 0
	testenv.Wait(t, time.Second, func() bool { calls++; return calls == 3 }, "never")
	if calls != 3 || time.Since(start) > 500*time.Millisecond {
		t.Fatalf("Wait returned after %d calls, %s", calls, time.Since(start))
	}
}

// TestChildEnvDropsOnairVariables: a child process gets none of the
// caller's ONAIR_* variables, only what the test sets, and the rest of the
// environment (PATH) unchanged.
func TestChildEnvDropsOnairVariables(t *testing.T) {
	t.Setenv("ONAIR_AUTH_SECRET", "from-the-shell")
	t.Setenv("ONAIR_TEST_REDIS_ADDR_UNUSED", "x")
	env := testenv.ChildEnv("ONAIR_AGGREGATE_CHILD=spec")
	var path bool
	for _, kv := range env {
		switch {
		case strings.HasPrefix(kv, "PATH="):
			path = true
		case strings.HasPrefix(kv, "ONAIR_") && kv != "ONAIR_AGGREGATE_CHILD=spec":
			t.Errorf("child inherits %s", kv)
		}
	}
	if !path {
		t.Error("child lost PATH")
	}
	if env[len(env)-1] != "ONAIR_AGGREGATE_CHILD=spec" {
		t.Errorf("child lacks the variable the test set: last is %q", env[len(env)-1])
	}
}

// TestClearOnairEnv: the in-process variables onair reads are gone, the
// harness's own ONAIR_TEST_* stay.
func TestClearOnairEnv(t *testing.T) {
	t.Setenv("ONAIR_REDIS_ADDRS", "bogus:1")
	t.Setenv("ONAIR_TEST_KEEP_ME", "kept")
	testenv.ClearOnairEnv()
	if v, ok := os.LookupEnv("ONAIR_REDIS_ADDRS"); ok {
		t.Errorf("ONAIR_REDIS_ADDRS=%q survived", v)
	}
	if v := os.Getenv("ONAIR_TEST_KEEP_ME"); v != "kept" {
		t.Errorf("ONAIR_TEST_KEEP_ME=%q, want kept", v)
	}
}
