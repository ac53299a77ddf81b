package push_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/onair/onair/internal/testenv"
	"github.com/onair/onair/push"
	"github.com/onair/onair/rooms/wire"
)

// TestGiftAckAndResend: a gift not acked within AckTimeout is re-sent
// once, on its own; an acked gift is not; one still unacked after the
// re-send is given up and counted.
func TestGiftAckAndResend(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	n := e.node(push.Config{AckTimeout: 300 * time.Millisecond})
	e.openRoom(5)
	acker, silent := e.dial(n, 5, 1, ""), e.dial(n, 5, 2, "")
	acker.next(5 * time.Second)
	silent.next(5 * time.Second)
	sent := time.Now() // the gateway's ack timer starts later: when it writes the gift
	seq := e.produce(5, gift(5, "g-1"))

	got := acker.events(1, 5*time.Second)
	if got[0].ID != "g-1" || got[0].Seq != seq {
		t.Fatalf("acker got %+v, want gift g-1 with seq %d", got[0], seq)
	}
	acker.send(`{"type":"ack","id":"g-1"}`)
	first := silent.events(1, 5*time.Second)
	again := silent.next(5 * time.Second) // the re-send: a bare gift frame
	if again.Type != wire.TypeGift || again.ID != "g-1" || again.Seq != seq || first[0].ID != "g-1" {
		t.Fatalf("silent viewer got %+v then %+v, want gift g-1 twice", first[0], again)
	}
	if d := time.Since(sent); d < 300*time.Millisecond {
		t.Fatalf("re-sent %s after the gift was produced, want the ack timeout (300ms) at least", d)
	}
	testenv.Wait(t, 5*time.Second, func() bool {
		return counter(t, n.reg, "onair_push_gift_unacked_total") == 1
	}, "the twice-unacked gift counted as given up")
	if r := counter(t, n.reg, "onair_push_gift_resends_total"); r != 1 {
		t.Fatalf("resends = %v, want 1 (the acker's gift is not re-sent)", r)
	}
	// The acker got nothing more: a ping's pong comes next.
	acker.send(`{"type":"ping"}`)
	if w := acker.next(5 * time.Second); w.Type != push.TypePong {
		t.Fatalf("acker's next frame %+v, want the pong (no re-sent gift)", w)
	}
}

// TestSlowClientStepsDown: a viewer that stops reading first loses
// danmaku, then gets state only, then is closed with 3008 "slow"; each step
// is counted, and a viewer reading along gets every frame meanwhile.
func TestSlowClientStepsDown(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	n := e.node(push.Config{QueueSize: 32, BatchInterval: 2 * time.Millisecond, WriteTimeout: time.Minute})
	e.openRoom(5)
	slow, fast := e.dialWith(smallBufferDialer, n, 5, 1, ""), e.dial(n, 5, 2, "")
	slow.next(5 * time.Second)
	fast.next(5 * time.Second)

	// The slow viewer steps down only as fast as batches fill its queue, and
	// one batch may merge many records: so the producer goes on, a pair per
	// batch (it waits for each pair's ack), until the slow viewer is closed,
	// then sends an end marker. The fast viewer must get every danmaku.
	big := strings.Repeat("x", 60_000)
	const most = 1000 // pairs at most: 120 MB, far more than the slow viewer's socket buffers and queue hold
	var sent atomic.Int64
	stop, produced := make(chan struct{}), make(chan struct{})
	go func() { // on its own, so the slow viewer can read its close frame meanwhile
		defer close(produced)
		ctx := context.Background()
	pairs:
		for i := range most {
			select {
			case <-stop:
				break pairs
			default:
			}
			e.prod.Produce(ctx, record(5, danmaku(5, 1, fmt.Sprintf("%d-%s", i, big))), nil)
			e.prod.Produce(ctx, record(5, fmt.Sprintf(`{"type":"leaderboard","room_id":5,"version":%d,"items":[],"pad":%q}`, i+1, big)), nil)
			_ = e.prod.Flush(ctx)
			sent.Add(1)
		}
		e.prod.Produce(ctx, record(5, danmaku(5, 1, "end-marker")), nil)
		_ = e.prod.Flush(ctx)
	}()
	done := make(chan error, 1)
	go func() {
		// Counts without decoding, to keep up.
		got := 0
		for {
			_ = fast.ws.SetReadDeadline(time.Now().Add(30 * time.Second))
			_, data, err := fast.ws.ReadMessage()
			if err != nil {
				done <- fmt.Errorf("fast viewer after %d danmaku: %w", got, err)
				return
			}
			got += bytes.Count(data, []byte(`"type":"danmaku"`))
			if bytes.Contains(data, []byte(`"d-end-marker"`)) {
				if want := int(sent.Load()) + 1; got != want {
					done <- fmt.Errorf("fast viewer got %d danmaku, want %d", got, want)
					return
				}
				done <- nil
				return
			}
		}
	}()
	testenv.Wait(t, 60*time.Second, func() bool {
		return counter(t, n.reg, "onair_push_disconnects_total", "reason", "slow") == 1
	}, "the slow viewer closed as slow")
	close(stop)
	// Reading now lets the close frame through (it waits behind the data
	// queued in the socket, for a few seconds at most).
	if code, reason := slow.closeCode(30 * time.Second); code != push.DisconnectSlow.Code || reason != "slow" {
		t.Fatalf("slow viewer closed with %d %q, want %d slow", code, reason, push.DisconnectSlow.Code)
	}
	if c := counter(t, n.reg, "onair_push_step_downs_total", "to", "no_danmaku"); c != 1 {
		t.Fatalf("step downs to no_danmaku = %v, want 1", c)
	}
	if c := counter(t, n.reg, "onair_push_step_downs_total", "to", "state_only"); c != 1 {
		t.Fatalf("step downs to state_only = %v, want 1", c)
	}
	<-produced
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	t.Logf("the slow viewer was closed after %d pairs", sent.Load())
}

// TestIdleTimeout: a viewer that sends nothing is closed with 3012 "idle";
// one that pings stays.
func TestIdleTimeout(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	n := e.node(push.Config{IdleTimeout: 400 * time.Millisecond})
	e.openRoom(5)
	idle, pinger := e.dial(n, 5, 1, ""), e.dial(n, 5, 2, "")
	idle.next(5 * time.Second)
	pinger.next(5 * time.Second)
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
				pinger.send(`{"type":"ping"}`)
			}
		}
	}()
	code, _ := idle.closeCode(5 * time.Second)
	close(stop)
	<-stopped // a ping in flight must not meet the cleanup closing the connection
	if code != push.DisconnectIdle.Code {
		t.Fatalf("idle viewer closed with %d, want %d", code, push.DisconnectIdle.Code)
	}
	// The gateway forgets the idle connection just after its close frame.
	testenv.Wait(t, 5*time.Second, func() bool { return n.gw.Conns() == 1 },
		"one connection left (the pinger's)")
}

// TestBadClientFrame: a frame that is not JSON closes with 3501.
func TestBadClientFrame(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	n := e.node(push.Config{})
	e.openRoom(5)
	v := e.dial(n, 5, 1, "")
	v.next(5 * time.Second)
	v.send("hello")
	if code, _ := v.closeCode(5 * time.Second); code != push.DisconnectBadFrame.Code {
		t.Fatalf("closed with %d, want %d", code, push.DisconnectBadFrame.Code)
	}
}
