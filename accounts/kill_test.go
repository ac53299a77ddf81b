package accounts

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/onair/onair/internal/pgdb"
	"github.com/onair/onair/internal/testenv"
)

// childSignUps is how many users each child signs up.
const childSignUps = 300

// TestIDsUniqueAcrossProcessesAndKill: two processes sign users up on one
// database at once; one is SIGKILLed halfway (its blocks of ids die with
// it) and a third takes its place. Every sign-up of the survivors
// succeeds — a user id handed out twice would fail one on the primary key
// — and every user has an id of its own (never its phone's digits).
func TestIDsUniqueAcrossProcessesAndKill(t *testing.T) {
	t.Parallel()
	dsn := testenv.PostgresDSN(t)
	ctx := context.Background()
	db, err := pgdb.Open(ctx, pgdb.Config{DSN: dsn, MaxConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := pgdb.Migrate(ctx, db, nil); err != nil {
		t.Fatal(err)
	}
	count := func(mode string) int {
		var n int
		if err := db.QueryRow(ctx, `SELECT count(*) FROM users WHERE phone LIKE $1`, "+8615"+modeDigit(mode)+"%").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	a := testenv.StartChild(t, "TestChildSignUps", testenv.ChildWorld{Postgres: dsn, Mode: "a"})
	b := testenv.StartChild(t, "TestChildSignUps", testenv.ChildWorld{Postgres: dsn, Mode: "b"})
	testenv.Wait(t, 60*time.Second, func() bool { return count("a") >= 50 }, "child a to sign up 50 users")
	if err := a.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = a.Wait()
	c := testenv.StartChild(t, "TestChildSignUps", testenv.ChildWorld{Postgres: dsn, Mode: "c"})
	for name, cmd := range map[string]interface{ Wait() error }{"b": b, "c": c} {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("child %s: %v (a sign-up failed: an id handed out twice?)", name, err)
		}
	}
	if nb, nc := count("b"), count("c"); nb != childSignUps || nc != childSignUps {
		t.Fatalf("users of b %d, of c %d; want %d each", nb, nc, childSignUps)
	}
	var users, ids, low int
	if err := db.QueryRow(ctx, `SELECT count(*), count(DISTINCT id), count(*) FILTER (WHERE id < $1) FROM users`, DefaultUserIDStart).Scan(&users, &ids, &low); err != nil {
		t.Fatal(err)
	}
	if users != ids || low != 0 {
		t.Fatalf("%d users, %d distinct ids, %d below the start", users, ids, low)
	}
}

func modeDigit(mode string) string { return map[string]string{"a": "0", "b": "1", "c": "2"}[mode] }

// TestChildSignUps is the body of a child of
// TestIDsUniqueAcrossProcessesAndKill: it signs up childSignUps users with
// phones +8615<mode digit><8 digits>, failing at the first error.
func TestChildSignUps(t *testing.T) {
	w := testenv.ChildWorldOf(t)
	ctx := context.Background()
	db, err := pgdb.Open(ctx, pgdb.Config{DSN: w.Postgres, MaxConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s, err := New(ctx, Config{DB: db, Secret: testSecret, DevCodes: true})
	if err != nil {
		t.Fatal(err)
	}
	for i := range childSignUps {
		phone := fmt.Sprintf("+8615%s%08d", modeDigit(w.Mode), i)
		code, err := s.SendCode(ctx, phone)
		if err != nil {
			t.Fatalf("code %d: %v", i, err)
		}
		if _, err := s.Login(ctx, phone, code); err != nil {
			t.Fatalf("sign-up %d: %v", i, err)
		}
	}
}
