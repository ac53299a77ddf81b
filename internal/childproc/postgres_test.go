package childproc

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// postgresDir is a data directory the user "postgres" can reach when the
// test runs as root (t.TempDir's parent is mode 0700).
func postgresDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "onair-pg-test-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func TestPostgresKeepsDataAcrossRestart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, err := StartPostgres(ctx, PostgresConfig{Dir: postgresDir(t), NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stop(t, s) })
	exec := func(sql string) {
		t.Helper()
		conn, err := pgx.Connect(ctx, PostgresDSN(s.Addr(), "postgres"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	exec("CREATE TABLE kept (v text); INSERT INTO kept VALUES ('v1')")

	// a pooled client stays connected: the fast shutdown must not wait for it
	idle, err := pgx.Connect(ctx, PostgresDSN(s.Addr(), "postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close(ctx)
	stop(t, s)
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, PostgresDSN(s.Addr(), "postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var v string
	if err := conn.QueryRow(ctx, "SELECT v FROM kept").Scan(&v); err != nil || v != "v1" {
		t.Fatalf("after a restart: %q, %v; want v1", v, err)
	}
}

func TestPostgresRefusesUnreachableDir(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("only root hands the directory to the user postgres")
	}
	t.Parallel()
	_, err := StartPostgres(context.Background(), PostgresConfig{Dir: t.TempDir() + "/pg"})
	if err == nil || !strings.Contains(err.Error(), "cannot reach") {
		t.Fatalf("err = %v, want one naming the unreachable parent", err)
	}
}
