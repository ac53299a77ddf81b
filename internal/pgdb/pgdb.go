// Package pgdb is PostgreSQL as onair's domains use it: a pgx pool whose
// every call has a deadline and goes through a circuit breaker (as Redis and
// ClickHouse calls do), transactions retried on serialization failures, and
// the versioned schema (migrate.go) applied at start.
//
// PostgreSQL is onair's system of record for what must never be lost or
// invented: people, rooms, money. Redis holds hot copies that can be
// rebuilt from it.
package pgdb

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/onair/onair/internal/breaker"
)

// DefaultTimeout bounds one call (or one transaction) when Config.Timeout
// is 0: a stalled PostgreSQL costs a request this long, then the breaker
// opens and calls fail at once.
const DefaultTimeout = 2 * time.Second

// Config configures Open.
type Config struct {
	// DSN is a PostgreSQL connection string (URL or key=value). Required.
	DSN string
	// MaxConns bounds the pool; 0 means 32.
	MaxConns int32
	// Timeout bounds each call and each transaction; 0 means DefaultTimeout.
	Timeout time.Duration
	// Breaker guards every call; nil means none.
	Breaker *breaker.Breaker
}

// DB is a guarded connection pool. It is safe for concurrent use.
type DB struct {
	pool    *pgxpool.Pool
	b       *breaker.Breaker
	timeout time.Duration
}

// Open creates the pool and checks that the server answers.
func Open(ctx context.Context, cfg Config) (*DB, error) {
	pc, err := pgxpool.ParseConfig(cfg.DSN)
	if err != nil {
		return nil, fmt.Errorf("cannot parse the PostgreSQL DSN: %w", err)
	}
	pc.MaxConns = cfg.MaxConns
	if pc.MaxConns == 0 {
		pc.MaxConns = 32
	}
	pc.ConnConfig.ConnectTimeout = 2 * time.Second
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, err
	}
	db := &DB{pool: pool, b: cfg.Breaker, timeout: cfg.Timeout}
	if db.timeout == 0 {
		db.timeout = DefaultTimeout
	}
	if err := db.Ping(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return db, nil
}

// Close closes every connection of the pool.
func (db *DB) Close() { db.pool.Close() }

// Pool is the unguarded pool, for migrations and tests.
func (db *DB) Pool() *pgxpool.Pool { return db.pool }

// Ping checks that the server answers a query within the timeout.
func (db *DB) Ping(ctx context.Context) error {
	var one int
	return db.QueryRow(ctx, "SELECT 1").Scan(&one)
}

// Exec runs one statement.
func (db *DB) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	var tag pgconn.CommandTag
	err := db.guard(ctx, func(ctx context.Context) (err error) {
		tag, err = db.pool.Exec(ctx, sql, args...)
		return err
	})
	return tag, err
}

// QueryRow runs a query and scans its first row into dest (pgx.ErrNoRows
// without one).
func (db *DB) QueryRow(ctx context.Context, sql string, args ...any) Row {
	return Row{db: db, ctx: ctx, sql: sql, args: args}
}

// Row is QueryRow's result: the query runs when Scan is called.
type Row struct {
	db   *DB
	ctx  context.Context
	sql  string
	args []any
}

// Scan runs the query and scans the first row.
func (r Row) Scan(dest ...any) error {
	return r.db.guard(r.ctx, func(ctx context.Context) error {
		return r.db.pool.QueryRow(ctx, r.sql, r.args...).Scan(dest...)
	})
}

// Collect runs a query and turns every row into a T with pgx's row
// functions (pgx.RowToStructByName, pgx.RowTo...).
func Collect[T any](ctx context.Context, db *DB, fn pgx.RowToFunc[T], sql string, args ...any) ([]T, error) {
	var out []T
	err := db.guard(ctx, func(ctx context.Context) error {
		rows, err := db.pool.Query(ctx, sql, args...)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, fn)
		return err
	})
	return out, err
}

// Tx runs fn in one transaction and commits it; an error from fn rolls it
// back. A serialization failure or a deadlock (which PostgreSQL resolves by
// failing one side) runs fn again, up to 3 times: fn must do nothing but
// through tx.
func (db *DB) Tx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return db.TxOptions(ctx, pgx.TxOptions{}, fn)
}

// TxOptions is Tx with an isolation level or access mode.
func (db *DB) TxOptions(ctx context.Context, opts pgx.TxOptions, fn func(tx pgx.Tx) error) error {
	var err error
	for attempt := 1; attempt <= 3; attempt++ {
		err = db.guard(ctx, func(ctx context.Context) error {
			return pgx.BeginTxFunc(ctx, db.pool, opts, func(tx pgx.Tx) error {
				err := fn(tx)
				if err != nil && Code(err) == "" && !tx.Conn().IsClosed() && ctx.Err() == nil {
					return ownError{err} // fn's own refusal (not enough coins): a healthy server
				}
				return err
			})
		})
		if o, ok := err.(ownError); ok {
			return o.err
		}
		if !Retryable(err) {
			return err
		}
	}
	return err
}

// ownError carries an error fn returned of its own through the breaker,
// which must not count it as a failure of PostgreSQL.
type ownError struct{ err error }

func (e ownError) Error() string { return e.err.Error() }
func (e ownError) Unwrap() error { return e.err }

// guard makes one call with the timeout and through the breaker.
func (db *DB) guard(ctx context.Context, call func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, db.timeout)
	defer cancel()
	if db.b == nil {
		return call(ctx)
	}
	done, err := db.b.Allow()
	if err != nil {
		return err
	}
	err = call(ctx)
	done(fault(ctx, err))
	return err
}

// Retryable reports a transaction that lost a race PostgreSQL resolved by
// failing it (serialization_failure, deadlock_detected): running it again
// is correct.
func Retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
}

// Code returns the SQLSTATE of a PostgreSQL error ("" for any other
// error): "23505" unique_violation, "23514" check_violation...
func Code(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// fault classifies an outcome for the breaker. PostgreSQL answered when
// the error is one of its own (a constraint, no rows, a bad query): that
// is a healthy server, unless the error's class says it cannot serve
// (08 connection exception, 53 insufficient resources, 57 operator
// intervention such as a shutdown, 58 system error, XX internal error).
// Network errors and timeouts are failures, unless the caller's own
// context was cancelled (the client left).
func fault(ctx context.Context, err error) error {
	if err == nil || errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if _, ok := err.(ownError); ok {
		return nil
	}
	if errors.Is(err, context.Canceled) && ctx.Err() != nil || errors.Is(err, breaker.ErrOpen) {
		return breaker.Excluded(err)
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code[:2] {
		case "08", "53", "57", "58", "XX":
			return err
		}
		return nil
	}
	return err
}

// EnsureDatabase creates the database named in dsn when it does not exist,
// connecting to the server's "postgres" database to do it.
func EnsureDatabase(ctx context.Context, dsn string) error {
	cc, err := pgx.ParseConfig(dsn)
	if err != nil {
		return fmt.Errorf("cannot parse the PostgreSQL DSN: %w", err)
	}
	name := cc.Database
	cc.Database = "postgres"
	conn, err := pgx.ConnectConfig(ctx, cc)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return err
	}
	if exists {
		return nil
	}
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	if Code(err) == "42P04" { // created meanwhile by another process
		return nil
	}
	return err
}
