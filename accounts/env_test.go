package accounts

import (
	"bytes"
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/onair/onair/internal/pgdb"
	"github.com/onair/onair/internal/pgdb/pgtest"
	"github.com/onair/onair/internal/testenv"
)

var testSecret = []byte("test-secret-0123456789abcdef0123")

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// syncBuf is a log sink tests read while the service writes.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

type env struct {
	db  *pgdb.DB
	s   *Service
	clk *clock
	log *syncBuf
}

// newEnv is a Service on a database of its own and the shared Redis with a
// prefix of its own, with dev codes on and a settable clock.
func newEnv(t *testing.T, edit func(*Config)) *env {
	t.Helper()
	db := pgtest.DB(t)
	rdb, prefix := testenv.Redis(t)
	e := &env{db: db, clk: &clock{t: time.Now()}, log: &syncBuf{}}
	cfg := Config{DB: db, Secret: testSecret, Redis: rdb, Prefix: prefix, DevCodes: true, Now: e.clk.now,
		Log: slog.New(slog.NewTextHandler(e.log, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	if edit != nil {
		edit(&cfg)
	}
	s, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.s = s
	return e
}

// signIn asks for a code and signs in with it.
func (e *env) signIn(t *testing.T, phone string) Session {
	t.Helper()
	ctx := context.Background()
	code, err := e.s.SendCode(ctx, phone)
	if err != nil || len(code) != 6 {
		t.Fatalf("SendCode(%s) = %q, %v", phone, code, err)
	}
	sess, err := e.s.Login(ctx, phone, code)
	if err != nil {
		t.Fatalf("Login(%s): %v", phone, err)
	}
	return sess
}
