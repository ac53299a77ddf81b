package history

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestWatchPausesSeesOtherNodes: a watcher on one Store hears a Reset when
// it subscribes, every pause and resume made through another Store (another
// node) on the same prefix, none from another prefix, and heartbeats while
// idle.
func TestWatchPausesSeesOtherNodes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false, 0)
	w := e.reader(t)
	notices := make(chan PauseNotice, 64)
	ctx, cancel := context.WithCancel(ctxT(t))
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.WatchPauses(ctx, func(n PauseNotice) { notices <- n })
	}()
	t.Cleanup(func() { cancel(); <-done })

	next := func(what string) PauseNotice {
		t.Helper()
		for {
			select {
			case n := <-notices:
				if n.Reset || n.Changed {
					return n
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("no notice within 5 s, want %s", what)
			}
		}
	}
	if n := next("a Reset on subscribe"); !n.Reset {
		t.Fatalf("first notice %+v, want a Reset", n)
	}
	other, err := New(Config{Redis: e.rdb, Prefix: e.s.prefix + "other:"})
	if err != nil {
		t.Fatal(err)
	}
	if err := other.SetPaused(ctxT(t), 6, true, time.UnixMilli(t0)); err != nil {
		t.Fatal(err)
	}
	for _, p := range []bool{true, false} {
		if err := e.s.SetPaused(ctxT(t), 7, p, time.UnixMilli(t0)); err != nil {
			t.Fatal(err)
		}
		if n := next("user 7 changed"); !n.Changed || n.UserID != 7 {
			t.Fatalf("after SetPaused(7, %v): notice %+v, want Changed for user 7 (user 6 is under another prefix)", p, n)
		}
	}

	// idle: heartbeats keep coming, about one per PausePing
	for len(notices) > 0 {
		<-notices
	}
	deadline := time.Now().Add(5 * PausePing)
	beats := 0
	for beats < 2 && time.Now().Before(deadline) {
		select {
		case n := <-notices:
			if n == (PauseNotice{}) {
				beats++
			}
		case <-time.After(time.Until(deadline)):
		}
	}
	if beats < 2 {
		t.Fatalf("%d heartbeats in %s of silence, want 2", beats, 5*PausePing)
	}
}

// TestWatchPausesResetsAfterReconnect: when the watcher's connection is
// killed, it resubscribes and reports a Reset (changes may have been
// missed meanwhile).
func TestWatchPausesResetsAfterReconnect(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false, 0)
	// the watcher's own client, named, so only its connection is killed
	// (other tests share this Redis)
	name := strings.TrimSuffix(e.s.prefix, ":") + "_watch"
	wrdb := redis.NewClient(&redis.Options{Addr: e.rdb.(*redis.Client).Options().Addr, ClientName: name})
	t.Cleanup(func() { wrdb.Close() })
	w, err := New(Config{Redis: wrdb, Prefix: e.s.prefix})
	if err != nil {
		t.Fatal(err)
	}
	resets := make(chan struct{}, 16)
	ctx, cancel := context.WithCancel(ctxT(t))
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.WatchPauses(ctx, func(n PauseNotice) {
			if n.Reset {
				resets <- struct{}{}
			}
		})
	}()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case <-resets:
	case <-time.After(5 * time.Second):
		t.Fatal("no Reset on subscribe")
	}
	list, err := e.rdb.ClientList(ctxT(t)).Result()
	if err != nil {
		t.Fatal(err)
	}
	var id string
	for _, line := range strings.Split(list, "\n") {
		if strings.Contains(line, " name="+name+" ") {
			id = strings.TrimPrefix(strings.Fields(line)[0], "id=")
		}
	}
	if id == "" {
		t.Fatalf("no connection named %s in CLIENT LIST", name)
	}
	if err := e.rdb.ClientKillByFilter(ctxT(t), "ID", id).Err(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-resets:
	case <-time.After(10 * time.Second):
		t.Fatal("no Reset after the connection was killed")
	}
}
