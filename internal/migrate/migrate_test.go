package migrate_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/onair/onair/internal/chdb"
	"github.com/onair/onair/internal/migrate"
	"github.com/onair/onair/internal/testenv"
)

var dbSeq atomic.Int64

// freshDB returns a connection to the shared test ClickHouse and a database
// name nobody used, dropped at cleanup. Migrations are not applied: that is
// what the tests here do.
func freshDB(t *testing.T) (driver.Conn, string) {
	t.Helper()
	conn, err := chdb.Open(chdb.Config{Addr: testenv.ClickHouseAddr(t)})
	if err != nil {
		t.Fatal(err)
	}
	db := fmt.Sprintf("migrate_%d_%d", os.Getpid(), dbSeq.Add(1))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+db); err != nil {
			t.Logf("cannot drop %s: %v", db, err)
		}
		conn.Close()
	})
	return conn, db
}

// TestApplyTwice: the first Apply runs every migration; a second one is a
// no-op that returns no versions, records nothing more and changes no table
// or row.
func TestApplyTwice(t *testing.T) {
	t.Parallel()
	conn, db := freshDB(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	all, err := migrate.All()
	if err != nil {
		t.Fatal(err)
	}
	var versions []int
	for _, m := range all {
		versions = append(versions, m.Version)
	}

	got, err := migrate.Apply(ctx, conn, db, nil)
	if err != nil {
		t.Fatalf("first Apply: %v", err)
	}
	if !reflect.DeepEqual(got, versions) {
		t.Fatalf("first Apply applied %v, want every version %v", got, versions)
	}
	before := tables(t, conn, db)
	if len(before) < len(all) {
		t.Fatalf("%s holds %d tables after %d migrations: %v", db, len(before), len(all), before)
	}
	for _, name := range []string{"events", "progress", "schema_migrations"} {
		if _, ok := before[name]; !ok {
			t.Fatalf("%s.%s missing after Apply; tables: %v", db, name, before)
		}
	}
	if err := conn.Exec(ctx, "INSERT INTO "+db+".events (event_id, type, user_id) SELECT 'kept', 'play', 7"); err != nil {
		t.Fatal(err)
	}

	got, err = migrate.Apply(ctx, conn, db, nil)
	if err != nil {
		t.Fatalf("second Apply: %v", err)
	}
	if len(got) != 0 {
		t.Fatalf("second Apply applied %v, want nothing", got)
	}
	if after := tables(t, conn, db); !reflect.DeepEqual(after, before) {
		t.Fatalf("tables changed by the second Apply:\nbefore %v\nafter  %v", before, after)
	}
	rows, err := conn.Query(ctx, "SELECT version, count() FROM "+db+".schema_migrations GROUP BY version ORDER BY version")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var recorded []int
	for rows.Next() {
		var v uint32
		var n uint64
		if err := rows.Scan(&v, &n); err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Errorf("schema_migrations holds version %d %d times, want once", v, n)
		}
		recorded = append(recorded, int(v))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(recorded, versions) {
		t.Fatalf("schema_migrations records %v, want %v", recorded, versions)
	}
	var n uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM "+db+".events WHERE event_id = 'kept'").Scan(&n); err != nil || n != 1 {
		t.Fatalf("the row inserted between the two Applies: count %d (%v), want 1", n, err)
	}
}

// tables maps each table of db to its definition and metadata time, which
// a re-created table would change.
func tables(t *testing.T, conn driver.Conn, db string) map[string]string {
	t.Helper()
	rows, err := conn.Query(context.Background(),
		"SELECT name, engine, create_table_query, toString(metadata_modification_time) FROM system.tables WHERE database = ?", db)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var name, engine, create, mtime string
		if err := rows.Scan(&name, &engine, &create, &mtime); err != nil {
			t.Fatal(err)
		}
		out[name] = engine + " " + mtime + " " + create
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestApplyRejectsBadDatabase: the name is spliced into SQL, so anything
// but a plain identifier is refused before any statement runs.
func TestApplyRejectsBadDatabase(t *testing.T) {
	t.Parallel()
	conn, _ := freshDB(t)
	ctx := context.Background()
	bad := []string{"", "bad-name", "1abc", "a b", "x;DROP DATABASE default", "`x`", "naïve",
		"a.b", strings.Repeat("a", 65)}
	// Only databases these names could have made: other tests of the
	// package create their own databases on the same server meanwhile.
	countDBs := func() uint64 {
		var n uint64
		if err := conn.QueryRow(ctx, "SELECT count() FROM system.databases WHERE has(?, name) OR name IN ('x', 'a', 'default')",
			bad).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := countDBs()
	for _, db := range bad {
		got, err := migrate.Apply(ctx, conn, db, nil)
		if err == nil || !strings.Contains(err.Error(), "invalid ClickHouse database name") || got != nil {
			t.Errorf("Apply(%q) = %v, %v; want an invalid-name error and no versions", db, got, err)
		}
	}
	if after := countDBs(); after != before {
		t.Fatalf("rejected names changed the server: %d databases before, %d after", before, after)
	}
}

// TestEmbeddedMigrations: every file splits into statements that run on
// their own: as many as the file has lines ending in ';', none empty, none
// holding another ';', each naming the {db} placeholder.
func TestEmbeddedMigrations(t *testing.T) {
	ms, err := migrate.All()
	if err != nil {
		t.Fatal(err)
	}
	onDisk, err := filepath.Glob(filepath.Join("sql", "*.sql"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) == 0 || len(ms) != len(onDisk) {
		t.Fatalf("%d embedded migrations, %d files in sql/", len(ms), len(onDisk))
	}
	for i, m := range ms {
		if i > 0 && m.Version <= ms[i-1].Version {
			t.Errorf("migration %s out of order after %s", m.Name, ms[i-1].Name)
		}
		b, err := os.ReadFile(filepath.Join("sql", m.Name+".sql"))
		if err != nil {
			t.Fatal(err)
		}
		ends := 0
		for _, line := range strings.Split(string(b), "\n") {
			if l := strings.TrimSpace(line); !strings.HasPrefix(l, "--") && strings.HasSuffix(l, ";") {
				ends++
			}
		}
		// Nothing is lost or reordered: the statements, with their ';'
		// back, are the file's lines that are not blank or comments.
		var fileLines, stmtLines []string
		for _, line := range strings.Split(string(b), "\n") {
			if l := strings.TrimSpace(line); l != "" && !strings.HasPrefix(l, "--") {
				fileLines = append(fileLines, l)
			}
		}
		for _, s := range m.SQL {
			for _, line := range strings.Split(s+";", "\n") {
				stmtLines = append(stmtLines, strings.TrimSpace(line))
			}
		}
		if !reflect.DeepEqual(stmtLines, fileLines) {
			t.Errorf("%s: statements do not add up to the file:\nstatements %q\nfile       %q", m.Name, stmtLines, fileLines)
		}
		if len(m.SQL) != ends || ends == 0 {
			t.Errorf("%s: %d statements, but %d lines end a statement", m.Name, len(m.SQL), ends)
		}
		for j, s := range m.SQL {
			switch {
			case strings.TrimSpace(s) == "":
				t.Errorf("%s statement #%d is empty", m.Name, j)
			case strings.Contains(s, ";"):
				t.Errorf("%s statement #%d holds a ';' (two statements on one line?):\n%s", m.Name, j, s)
			case !strings.Contains(s, "{db}."):
				t.Errorf("%s statement #%d does not name {db}: it would touch the default database:\n%s", m.Name, j, s)
			}
		}
	}
}
