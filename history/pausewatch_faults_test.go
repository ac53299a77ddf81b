package history

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/onair/onair/internal/testenv"
)

// lockedBuffer is a log sink safe for the watcher's goroutine.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.b.String(), s)
}

// TestWatchPausesBacksOffWhileRedisIsDown: with its redis-server stopped,
// the pause watcher retries with backoff (few dials, not four a second) and
// logs the loss once, not once per retry; when Redis is back it
// resubscribes (a Reset) on its own.
func TestWatchPausesBacksOffWhileRedisIsDown(t *testing.T) {
	t.Parallel()
	srv := testenv.PrivateRedis(t)
	var dials atomic.Int64
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr(), Dialer: func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}})
	t.Cleanup(func() { rdb.Close() })
	logs := &lockedBuffer{}
	s, err := New(Config{Redis: rdb, Prefix: "pw:", Log: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	resets := make(chan struct{}, 64)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.WatchPauses(ctx, func(n PauseNotice) {
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

	stopCtx, stopCancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer stopCancel()
	if err := srv.Stop(stopCtx); err != nil {
		t.Fatal(err)
	}
	before := dials.Load()
	// The window measured: 3 s of outage. Retrying every 250 ms would dial
	// about 12 times and log as often; backing off from 250 ms doubles to
	// 1 s, 2 s: about 4 dials.
	time.Sleep(3 * time.Second)
	if n := dials.Load() - before; n > 6 {
		t.Errorf("%d dials in 3 s of outage, want at most 6 (backoff)", n)
	}
	if n := logs.count("lost its subscription"); n != 1 {
		t.Errorf("%d 'lost its subscription' lines in 3 s, want 1 (sampled); log:\n%s", n, logs.b.String())
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-resets:
	case <-time.After(10 * time.Second):
		t.Fatal("no Reset within 10 s of Redis coming back")
	}
}
