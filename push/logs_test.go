package push

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"
)

// lockedBuffer is a log sink safe for concurrent writers.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) lines(substr string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, line := range strings.Split(l.b.String(), "\n") {
		if strings.Contains(line, substr) {
			out = append(out, line)
		}
	}
	return out
}

// TestSampledCloseLogs: 1 000 slow connections closed (and 1 000 step-downs)
// in a burst write a line or two each, saying how many they stand for,
// while the metrics count all 1 000. The connections share one real
// WebSocket: close only writes a close frame to it and closes it.
func TestSampledCloseLogs(t *testing.T) {
	var logs lockedBuffer
	reg := prometheus.NewRegistry()
	g, err := New(Config{Brokers: []string{"unused:9092"}, Redis: redis.NewClient(&redis.Options{Addr: "unused:6379"}),
		Registerer: reg, Log: slog.New(slog.NewTextHandler(&logs, nil)), LogEvery: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err == nil {
			defer ws.Close()
			for {
				if _, _, err := ws.ReadMessage(); err != nil {
					return
				}
			}
		}
	}))
	defer srv.Close()
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	r := newRoom(g, 5)
	now := time.Now()
	for i := range 1000 {
		c := &client{g: g, ws: ws, user: uint64(i + 1), room: r}
		c.mu.Lock()
		c.stepDown(levelState, now)
		c.mu.Unlock()
		c.close(DisconnectSlow)
	}
	if got := testutil.ToFloat64(g.m.disconnects.WithLabelValues(DisconnectSlow.Reason)); got != 1000 {
		t.Fatalf("disconnects_total{reason=slow} = %v, want 1000", got)
	}
	if got := testutil.ToFloat64(g.m.stepDowns.WithLabelValues(levelNames[levelState])); got != 1000 {
		t.Fatalf("step_downs_total = %v, want 1000", got)
	}
	closes, steps := logs.lines("connection closed"), logs.lines("stepped down")
	if len(closes) != 1 || len(steps) != 1 {
		t.Fatalf("%d close lines and %d step-down lines for 1000 of each, want 1 each (the first of the run):\n%s",
			len(closes), len(steps), strings.Join(append(closes, steps...), "\n"))
	}
	// The next line after the interval stands for the 999 skipped and itself.
	g.logs.closed[DisconnectSlow].Every = 0
	(&client{g: g, ws: ws, user: 1, room: r}).close(DisconnectSlow)
	if last := logs.lines("connection closed"); len(last) != 2 || !strings.Contains(last[1], "count=1000") {
		t.Fatalf("after the interval: %q, want a second line with count=1000", last)
	}
}
