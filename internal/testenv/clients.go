package testenv

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/redis/go-redis/v9"

	"github.com/onair/onair/internal/chdb"
	"github.com/onair/onair/internal/migrate"
)

// Redis returns a client to this test binary's shared redis-server and a key
// prefix unique to this test (e.g. "t4711_17:"), so tests run in parallel.
// Code under test must put the prefix in front of every key it writes. At
// cleanup the prefix's keys are deleted and the client is closed.
func Redis(t testing.TB) (*redis.Client, string) {
	t.Helper()
	addr := RedisAddr(t)
	prefix := fmt.Sprintf("t%d_%d:", os.Getpid(), next())
	rdb := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: 5 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		rdb.Close()
		t.Fatalf("testenv: redis at %s: %v", addr, err)
	}
	t.Cleanup(func() {
		defer rdb.Close()
		// Shared servers outlive the test; without this, a long
		// `go test -count=100` fills the server's memory.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		iter := rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		var keys []string
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
			if len(keys) == 1000 {
				rdb.Unlink(ctx, keys...)
				keys = keys[:0]
			}
		}
		if len(keys) > 0 {
			rdb.Unlink(ctx, keys...)
		}
	})
	return rdb, prefix
}

// ClickHouse returns a connection to this binary's shared clickhouse-server
// and a fresh database unique to this test (e.g. "t_4711_17"), with
// internal/migrate applied. The connection's default database is that
// database, so unqualified table names work too. The database is dropped at
// cleanup.
func ClickHouse(t testing.TB) (driver.Conn, string) {
	t.Helper()
	addr := ClickHouseAddr(t)
	db := fmt.Sprintf("t_%d_%d", os.Getpid(), next())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// The database must exist before a connection can select it, so
	// migrations run on a connection to "default".
	admin, err := openClickHouse(addr, "default")
	if err != nil {
		t.Fatalf("testenv: clickhouse at %s: %v", addr, err)
	}
	defer admin.Close()
	if _, err := migrate.Apply(ctx, admin, db, nil); err != nil {
		t.Fatalf("testenv: clickhouse migrations on %s: %v", db, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := openClickHouse(addr, "default")
		if err != nil {
			t.Logf("testenv: cannot drop %s: %v", db, err)
			return
		}
		defer c.Close()
		if err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+db); err != nil {
			t.Logf("testenv: cannot drop %s: %v", db, err)
		}
	})
	conn, err := openClickHouse(addr, db)
	if err != nil {
		t.Fatalf("testenv: clickhouse at %s: %v", addr, err)
	}
	t.Cleanup(func() { conn.Close() }) // runs before the DROP above
	if err := conn.Ping(ctx); err != nil {
		t.Fatalf("testenv: clickhouse at %s: %v", addr, err)
	}
	return conn, db
}

func openClickHouse(addr, db string) (driver.Conn, error) {
	return chdb.Open(chdb.Config{Addr: addr, Database: db, MaxOpenConns: 8})
}
