package pgdb

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"log/slog"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

//go:embed sql/*.sql
var files embed.FS

// Migration is one versioned step of the PostgreSQL schema: one file, run
// as one transaction (PostgreSQL's DDL is transactional, so a step applies
// whole or not at all).
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// Migrations returns the embedded migrations in version order. Files are
// named NNNN_what.sql; each domain keeps to its own range of versions
// (0001–0009 shared, 0010–0029 accounts, 0030–0049 rooms, 0050–0079
// wallet, 0080–0099 quiz), so branches do not collide.
func Migrations() ([]Migration, error) {
	entries, err := fs.ReadDir(files, "sql")
	if err != nil {
		return nil, err
	}
	var ms []Migration
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil {
			return nil, fmt.Errorf("migration file %q: name must start with NNNN_", e.Name())
		}
		b, err := files.ReadFile("sql/" + e.Name())
		if err != nil {
			return nil, err
		}
		ms = append(ms, Migration{Version: v, Name: strings.TrimSuffix(e.Name(), ".sql"), SQL: string(b)})
	}
	slices.SortFunc(ms, func(a, b Migration) int { return a.Version - b.Version })
	for i := 1; i < len(ms); i++ {
		if ms[i].Version == ms[i-1].Version {
			return nil, fmt.Errorf("two PostgreSQL migrations with version %d", ms[i].Version)
		}
	}
	return ms, nil
}

// migrateLock is the advisory lock that makes processes starting together
// apply the migrations one after the other.
const migrateLock = 0x6f6e6169 // "onai"

// Migrate applies every migration not yet recorded in schema_migrations,
// each in its own transaction, and returns the names applied. Several
// processes may call it at once: an advisory lock orders them.
func Migrate(ctx context.Context, db *DB, log *slog.Logger) ([]string, error) {
	ms, err := Migrations()
	if err != nil {
		return nil, err
	}
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("cannot connect to PostgreSQL to migrate: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", migrateLock); err != nil {
		return nil, err
	}
	defer conn.Exec(context.Background(), "SELECT pg_advisory_unlock($1)", migrateLock) //nolint:errcheck // released with the session anyway
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return nil, fmt.Errorf("cannot create schema_migrations: %w", err)
	}
	var applied []string
	for _, m := range ms {
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			var done bool
			if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = $1)", m.Version).Scan(&done); err != nil || done {
				return err
			}
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", m.Version, m.Name)
			applied = append(applied, m.Name)
			return err
		})
		if err != nil {
			return applied, fmt.Errorf("PostgreSQL migration %s failed: %w", m.Name, err)
		}
	}
	if len(applied) > 0 && log != nil {
		log.Info("PostgreSQL migrations applied", "applied", applied)
	}
	return applied, nil
}
