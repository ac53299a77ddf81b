package push_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/onair/onair/internal/testenv"
	"github.com/onair/onair/push"
)

// TestGatewayFanOut: two viewers of a room get every danmaku and gift
// produced after they joined, in seq (offset) order, each once; a viewer
// of another room gets none of them; records of rooms without viewers are
// skipped with one lookup.
func TestGatewayFanOut(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	n := e.node(push.Config{})
	e.openRoom(5)
	e.openRoom(6)
	a, b := e.dial(n, 5, 1, ""), e.dial(n, 5, 2, "")
	other := e.dial(n, 6, 3, "")
	for _, v := range []*viewer{a, b, other} {
		if s := v.next(5 * time.Second); s.Type != push.TypeSnapshot || len(s.Recent) != 0 {
			t.Fatalf("first frame %+v, want an empty snapshot", s)
		}
	}
	var want []int64
	for i := range 20 {
		if i%5 == 4 {
			want = append(want, e.produce(5, gift(5, "g"+string(rune('a'+i)))))
			continue
		}
		want = append(want, e.produce(5, danmaku(5, 1, "m"+string(rune('a'+i)))))
	}
	e.produce(7, danmaku(7, 1, "nobody watches room 7"))
	for _, v := range []*viewer{a, b} {
		got := v.events(len(want), 10*time.Second)
		if len(got) != len(want) {
			t.Fatalf("got %d events, want %d", len(got), len(want))
		}
		for i, w := range got {
			if w.Seq != want[i] || w.RoomID != 5 {
				t.Fatalf("event %d: %+v, want seq %d of room 5", i, w, want[i])
			}
		}
	}
	e.produce(6, danmaku(6, 3, "only room 6"))
	if got := other.events(1, 5*time.Second); got[0].Text != "only room 6" {
		t.Fatalf("room 6 viewer got %+v, want only its own room's danmaku", got)
	}
	testenv.Wait(t, 5*time.Second, func() bool {
		return counter(t, n.reg, "onair_push_records_total", "outcome", "no_viewers") == 1
	}, "room 7's record counted as no_viewers")
}

// TestGatewayBatchEncodedOnce: danmaku arriving within one tick reach the
// viewers as one batch frame, encoded once for all of them.
func TestGatewayBatchEncodedOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	n := e.node(push.Config{BatchInterval: 300 * time.Millisecond})
	e.openRoom(5)
	var vs []*viewer
	for u := range 5 {
		v := e.dial(n, 5, uint64(u+1), "")
		v.next(5 * time.Second) // snapshot
		vs = append(vs, v)
	}
	var recs []string
	for i := range 10 {
		recs = append(recs, danmaku(5, 1, "x"+string(rune('a'+i))))
	}
	// One produce call: the ten land in one fetch, well within one tick.
	for _, r := range recs {
		e.prod.Produce(context.Background(), record(5, r), nil)
	}
	if err := e.prod.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, v := range vs {
		got := 0
		frames := 0
		for got < 10 {
			w := v.next(5 * time.Second)
			if w.Type != push.TypeBatch {
				continue
			}
			frames++
			got += len(w.Items)
		}
		if frames > 2 {
			t.Fatalf("10 danmaku of one tick came in %d batch frames, want 1 (2 if a tick fell between)", frames)
		}
	}
	batches := counter(t, n.reg, "onair_push_batches_encoded_total")
	if batches > 2 {
		t.Fatalf("%v batches encoded for 5 viewers, want one per tick", batches)
	}
}

// TestUpgradeRefused: bad input is refused before the upgrade with a JSON
// error naming the field; a missing or bad token is 401 (api's check); a
// foreign origin 403; a room never opened 404.
func TestUpgradeRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	n := e.node(push.Config{AllowedOrigins: []string{"https://app.example.com"}})
	e.openRoom(5)
	f := func(query string, hdr http.Header, status int, field string) {
		t.Helper()
		if got, gotField := e.refusal(n, query, hdr); got != status || gotField != field {
			t.Fatalf("%s: HTTP %d field %q, want %d naming %q", query, got, gotField, status, field)
		}
	}
	tok := testenv.SignToken(t, e.secret, 1, "")
	auth := http.Header{"Authorization": {"Bearer " + tok}}
	f("?room=5", nil, 401, "")
	f("?room=5&token=nope", nil, 401, "")
	f("?room=x", auth, 400, "room")
	f("?room=", auth, 400, "room")
	f("", http.Header{"Authorization": auth["Authorization"], "Origin": {"https://evil.example.com"}}, 403, "Origin") // personal-only: origin checked too
	f("?room=5&since=-3", auth, 400, "since")
	f("?room=99", auth, 404, "room")
	f("?room=5", http.Header{"Authorization": auth["Authorization"], "Origin": {"https://evil.example.com"}}, 403, "Origin")
	// The token may come as ?token= (browsers cannot set headers on a
	// WebSocket); an allowed origin and the page's own origin pass.
	h := http.Header{"Origin": {"https://app.example.com"}}
	u := "ws" + strings.TrimPrefix(n.srv.URL, "http") + "/v1/ws?room=5&token=" + tok
	if ws, _, err := dialer().Dial(u, h); err != nil {
		t.Fatalf("allowed origin refused: %v", err)
	} else {
		ws.Close()
	}
	h = http.Header{"Origin": {n.srv.URL}}
	if ws, _, err := dialer().Dial(u, h); err != nil {
		t.Fatalf("same origin refused: %v", err)
	} else {
		ws.Close()
	}
}

// TestMaxConns: beyond MaxConns connections, upgrades are refused with 503
// (the process keeps file descriptors for its own clients); a freed slot
// is usable again.
func TestMaxConns(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	n := e.node(push.Config{MaxConns: 2})
	e.openRoom(5)
	a := e.dial(n, 5, 1, "")
	e.dial(n, 5, 2, "")
	auth := http.Header{"Authorization": {"Bearer " + testenv.SignToken(t, e.secret, 3, "")}}
	if status, _ := e.refusal(n, "?room=5", auth); status != 503 {
		t.Fatalf("third connection: HTTP %d, want 503", status)
	}
	a.ws.Close()
	testenv.Wait(t, 5*time.Second, func() bool { return n.gw.Conns() == 1 }, "the closed connection to leave")
	e.dial(n, 5, 3, "")
}

// TestMaxConnsUnderConcurrentUpgrades: 24 viewers dial at once a node that
// holds 5: exactly 5 get a connection, the rest 503, whatever the order in
// which the upgrades check, answer 101 and register.
func TestMaxConnsUnderConcurrentUpgrades(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	n := e.node(push.Config{MaxConns: 5})
	e.openRoom(5)
	const dialers = 24
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []*websocket.Conn
	statuses := map[int]int{}
	for u := range dialers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ws, resp, err := e.tryDialWith(dialer(), n, 5, uint64(u+1), "")
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				conns = append(conns, ws)
				statuses[http.StatusSwitchingProtocols]++
			case resp != nil:
				statuses[resp.StatusCode]++
			default:
				statuses[0]++
			}
		}()
	}
	wg.Wait()
	for _, ws := range conns {
		ws.Close()
	}
	if statuses[http.StatusSwitchingProtocols] != 5 || statuses[http.StatusServiceUnavailable] != dialers-5 {
		t.Fatalf("%d dials at once on a node of 5: %v (status: count), want 5 upgrades and %d 503", dialers, statuses, dialers-5)
	}
}
