// Package migrate applies onair's versioned ClickHouse schema. The SQL files
// are embedded in the binary; each applied version is recorded in the
// database's schema_migrations table, so applying twice is a no-op.
package migrate

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"log/slog"
	"sort"
	"strconv"
	"strings"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/onair/onair/internal/chdb"
)

//go:embed sql/*.sql
var files embed.FS

// Migration is one versioned schema step.
type Migration struct {
	Version int
	Name    string
	SQL     []string // statements, run in order
}

// All returns the embedded migrations in version order.
func All() ([]Migration, error) {
	entries, err := fs.ReadDir(files, "sql")
	if err != nil {
		return nil, err
	}
	var ms []Migration
	for _, e := range entries {
		name := e.Name()
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil {
			return nil, fmt.Errorf("migration file %q: name must start with NNNN_", name)
		}
		b, err := files.ReadFile("sql/" + name)
		if err != nil {
			return nil, err
		}
		ms = append(ms, Migration{Version: v, Name: strings.TrimSuffix(name, ".sql"), SQL: splitStatements(string(b))})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Version < ms[j].Version })
	for i := 1; i < len(ms); i++ {
		if ms[i].Version == ms[i-1].Version {
			return nil, fmt.Errorf("two migrations with version %d", ms[i].Version)
		}
	}
	return ms, nil
}

// splitStatements splits a file on ';' at line ends and drops "--" comments.
func splitStatements(s string) []string {
	var out []string
	var cur strings.Builder
	for _, line := range strings.Split(s, "\n") {
		t := strings.TrimSpace(line)
		if strings.HasPrefix(t, "--") || t == "" {
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
		if strings.HasSuffix(t, ";") {
			out = append(out, strings.TrimSuffix(strings.TrimSpace(cur.String()), ";"))
			cur.Reset()
		}
	}
	if strings.TrimSpace(cur.String()) != "" {
		out = append(out, strings.TrimSpace(cur.String()))
	}
	return out
}

// Apply creates database db when missing and applies every migration it has
// not recorded yet, returning the versions it applied. The SQL files name
// tables as {db}.name, so one server can hold many databases (tests use one
// each) and conn need not be bound to db.
func Apply(ctx context.Context, conn driver.Conn, db string, log *slog.Logger) ([]int, error) {
	if !chdb.ValidIdent(db) {
		return nil, fmt.Errorf("invalid ClickHouse database name %q", db)
	}
	if err := conn.Exec(ctx, "CREATE DATABASE IF NOT EXISTS "+db); err != nil {
		return nil, fmt.Errorf("cannot create database %s: %w", db, err)
	}
	if err := conn.Exec(ctx, "CREATE TABLE IF NOT EXISTS "+db+".schema_migrations (version UInt32, name String, applied_at DateTime DEFAULT now()) ENGINE = MergeTree ORDER BY version"); err != nil {
		return nil, fmt.Errorf("cannot create %s.schema_migrations: %w", db, err)
	}
	done := map[int]bool{}
	rows, err := conn.Query(ctx, "SELECT version FROM "+db+".schema_migrations")
	if err != nil {
		return nil, fmt.Errorf("cannot read %s.schema_migrations: %w", db, err)
	}
	for rows.Next() {
		var v uint32
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return nil, err
		}
		done[int(v)] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	ms, err := All()
	if err != nil {
		return nil, err
	}
	var applied []int
	for _, m := range ms {
		if done[m.Version] {
			continue
		}
		for i, stmt := range m.SQL {
			if err := conn.Exec(ctx, qualify(stmt, db)); err != nil {
				return applied, fmt.Errorf("migration %s statement #%d: %w", m.Name, i, err)
			}
		}
		if err := conn.Exec(ctx, "INSERT INTO "+db+".schema_migrations (version, name) SELECT ?, ?", uint32(m.Version), m.Name); err != nil {
			return applied, fmt.Errorf("cannot record migration %s: %w", m.Name, err)
		}
		if log != nil {
			log.Info("clickhouse migration applied", "db", db, "version", m.Version, "name", m.Name)
		}
		applied = append(applied, m.Version)
	}
	return applied, nil
}

// qualify substitutes the database for the {db} placeholder.
func qualify(stmt, db string) string {
	return strings.ReplaceAll(stmt, "{db}", db)
}
