package testenv

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/onair/onair/internal/childproc"
)

// EnvPostgresDSN names a PostgreSQL server to use instead of starting one:
// a DSN whose user may create databases (each test gets a database of its
// own on it).
const EnvPostgresDSN = "ONAIR_TEST_POSTGRES_DSN"

var sharedPostgres = sync.OnceValues(func() (string, error) {
	if dsn := os.Getenv(EnvPostgresDSN); dsn != "" {
		return dsn, nil
	}
	root, err := sharedRoot()
	if err != nil {
		return "", err
	}
	// as root the server runs as the user postgres, which must reach it
	if err := os.Chmod(root, 0o755); err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	srv, err := childproc.StartPostgres(ctx, childproc.PostgresConfig{Dir: root + "/postgres", NoSync: true})
	if err != nil {
		return "", err
	}
	return childproc.PostgresDSN(srv.Addr(), "postgres"), nil
})

// PostgresDSN returns the DSN of a new, empty database on this test
// binary's shared PostgreSQL server (started on first use), dropped at
// cleanup.
func PostgresDSN(t testing.TB) string {
	t.Helper()
	server, err := sharedPostgres()
	if err != nil {
		t.Fatalf("testenv: shared postgres: %v", err)
	}
	cc, err := pgx.ParseConfig(server)
	if err != nil {
		t.Fatalf("testenv: %s: %v", EnvPostgresDSN, err)
	}
	name := fmt.Sprintf("onair_test_%d_%d", os.Getpid(), next())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := pgx.ConnectConfig(ctx, cc)
	if err != nil {
		t.Fatalf("testenv: postgres: %v", err)
	}
	defer admin.Close(context.Background())
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("testenv: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if c, err := pgx.ConnectConfig(ctx, cc); err == nil {
			_, _ = c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
			c.Close(ctx)
		}
	})
	return withDatabase(cc, name)
}

// PrivatePostgres starts a PostgreSQL server only this test uses, for
// outage tests that Stop, Start or kill it; it is stopped at cleanup.
func PrivatePostgres(t testing.TB) *childproc.Server {
	t.Helper()
	dir, err := os.MkdirTemp("", "onair-pg-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil { // reachable by the user postgres
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return private(t, func(ctx context.Context, _ string) (*childproc.Server, error) {
		return childproc.StartPostgres(ctx, childproc.PostgresConfig{Dir: dir, NoSync: true})
	})
}

// withDatabase is the DSN of cc's server and user for database name.
func withDatabase(cc *pgx.ConnConfig, name string) string {
	dsn := fmt.Sprintf("postgres://%s@%s:%d/%s?sslmode=disable", cc.User, cc.Host, cc.Port, name)
	if cc.Password != "" {
		dsn = fmt.Sprintf("postgres://%s:%s@%s:%d/%s?sslmode=disable", cc.User, cc.Password, cc.Host, cc.Port, name)
	}
	return dsn
}
