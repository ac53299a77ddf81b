// Package pgtest gives a test a PostgreSQL database of its own with
// onair's schema (testenv's shared server; testenv cannot import pgdb,
// whose breaker's tests import testenv).
package pgtest

import (
	"context"
	"testing"
	"time"

	"github.com/onair/onair/internal/pgdb"
	"github.com/onair/onair/internal/testenv"
)

// DB returns a pool on a new database of the shared server with onair's
// migrations applied; closed at cleanup, before the database is dropped.
func DB(t testing.TB) *pgdb.DB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := pgdb.Open(ctx, pgdb.Config{DSN: testenv.PostgresDSN(t), MaxConns: 8})
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(db.Close)
	if _, err := pgdb.Migrate(ctx, db, nil); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	return db
}
