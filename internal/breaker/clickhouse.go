package breaker

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// ClickHouse returns conn guarded by b: while the circuit is open, Query,
// QueryRow, Select, Exec, PrepareBatch and Ping fail at once with an
// *OpenError; otherwise the outcome of each is reported to b (the start of
// a query, not the rows read later). The other methods pass through.
func (b *Breaker) ClickHouse(conn driver.Conn) driver.Conn { return &chConn{Conn: conn, b: b} }

type chConn struct {
	driver.Conn
	b *Breaker
}

func (c *chConn) Query(ctx context.Context, query string, args ...any) (driver.Rows, error) {
	rows, err := guarded(c.b, ctx, func() (driver.Rows, error) { return c.Conn.Query(ctx, query, args...) },
		func(r driver.Rows) { r.Close() })
	if err != nil {
		return nil, err
	}
	return &chRows{Rows: rows, b: c.b, ctx: ctx}, nil
}

// QueryRow is Query and a read of the first row: clickhouse-go's own row
// reads the data only in Scan, where a stall would not be seen.
func (c *chConn) QueryRow(ctx context.Context, query string, args ...any) driver.Row {
	rows, err := c.Query(ctx, query, args...)
	return &chRow{rows: rows, err: err}
}

func (c *chConn) Select(ctx context.Context, dest any, query string, args ...any) error {
	_, err := guarded(c.b, ctx, func() (struct{}, error) { return struct{}{}, c.Conn.Select(ctx, dest, query, args...) }, nil)
	return err
}

func (c *chConn) Exec(ctx context.Context, query string, args ...any) error {
	_, err := guarded(c.b, ctx, func() (struct{}, error) { return struct{}{}, c.Conn.Exec(ctx, query, args...) }, nil)
	return err
}

func (c *chConn) Ping(ctx context.Context) error {
	_, err := guarded(c.b, ctx, func() (struct{}, error) { return struct{}{}, c.Conn.Ping(ctx) }, nil)
	return err
}

func (c *chConn) PrepareBatch(ctx context.Context, query string, opts ...driver.PrepareBatchOption) (driver.Batch, error) {
	return guarded(c.b, ctx, func() (driver.Batch, error) { return c.Conn.PrepareBatch(ctx, query, opts...) },
		func(b driver.Batch) { _ = b.Abort() })
}

// guarded makes one call through b, and returns by ctx's end even when the
// driver does not: clickhouse-go bounds a new connection's handshake by its
// DialTimeout, not by the context, so a frozen server would hold a request
// for seconds. An abandoned call finishes in the background and release
// (when not nil) frees what it returned; the breaker opens after a few
// such timeouts, so few calls are ever abandoned.
func guarded[T any](b *Breaker, ctx context.Context, call func() (T, error), release func(T)) (T, error) {
	var zero T
	done, err := b.Allow()
	if err != nil {
		return zero, err
	}
	if ctx.Done() == nil {
		v, err := call()
		done(chFault(ctx, err))
		return v, err
	}
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	go func() {
		v, err := call()
		ch <- result{v, err}
	}()
	select {
	case r := <-ch:
		done(chFault(ctx, r.err))
		return r.v, r.err
	case <-ctx.Done():
		err := ctx.Err()
		done(chFault(ctx, err))
		go func() {
			if r := <-ch; r.err == nil && release != nil {
				release(r.v)
			}
		}()
		return zero, fmt.Errorf("clickhouse: %w", err)
	}
}

// chFault classifies a ClickHouse error: an exception is the server's
// answer (a bad query, a missing table) from a healthy server; network
// errors, timeouts and a pool that cannot get a connection are failures,
// unless the caller's own context was cancelled.
func chFault(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return Excluded(err)
	}
	var ex *clickhouse.Exception
	if errors.As(err, &ex) {
		return nil
	}
	return err
}

// chRows reports a failure met while reading rows (a stall after the
// first block) to the breaker, as one more call's outcome.
type chRows struct {
	driver.Rows
	b    *Breaker
	ctx  context.Context
	seen bool
}

func (r *chRows) Next() bool {
	if r.Rows.Next() {
		return true
	}
	if err := r.Rows.Err(); err != nil && !r.seen {
		r.seen = true
		r.b.note(chFault(r.ctx, err))
	}
	return false
}

// chRow is the driver.Row of QueryRow, as clickhouse-go's: the first row,
// sql.ErrNoRows without one.
type chRow struct {
	rows driver.Rows
	err  error
}

func (r *chRow) Err() error { return r.err }

func (r *chRow) Scan(dest ...any) error {
	return r.scan(func() error { return r.rows.Scan(dest...) })
}

func (r *chRow) ScanStruct(dest any) error {
	return r.scan(func() error { return r.rows.ScanStruct(dest) })
}

func (r *chRow) scan(scan func() error) error {
	if r.err != nil {
		return r.err
	}
	defer r.rows.Close()
	if !r.rows.Next() {
		if err := r.rows.Err(); err != nil {
			return err
		}
		return sql.ErrNoRows
	}
	if err := scan(); err != nil {
		return err
	}
	return r.rows.Close()
}
