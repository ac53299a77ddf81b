package push_test

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/onair/onair/internal/testenv"
	"github.com/onair/onair/push"
	"github.com/onair/onair/rooms/wire"
)

// TestSnapshotOnReconnect: a viewer that drops and reconnects with
// ?since=<last seq> gets, in the snapshot and the batches after it, every
// event it missed exactly once and in order: no gap, no duplicate. It runs
// while the room keeps producing, so events land before, during and after
// the reconnect.
func TestSnapshotOnReconnect(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	n := e.node(push.Config{BatchInterval: 5 * time.Millisecond})
	e.openRoom(5)
	keeper := e.dial(n, 5, 9, "") // keeps the room, and its ring, on the node
	keeper.next(5 * time.Second)

	var produced []int64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if i%7 == 3 {
				produced = append(produced, e.produce(5, gift(5, "g"+strconv.Itoa(i))))
			} else {
				produced = append(produced, e.produce(5, danmaku(5, 1, "m"+strconv.Itoa(i))))
			}
			time.Sleep(time.Millisecond) // a steady stream, not a synchronisation
		}
	}()
	var seen []int64
	last := int64(-1)
	for round := range 5 {
		q := ""
		if last >= 0 {
			q = "&since=" + strconv.FormatInt(last, 10)
		}
		v := e.dial(n, 5, 1, q)
		snap := v.next(5 * time.Second)
		if snap.Type != push.TypeSnapshot || snap.Gap {
			t.Fatalf("round %d: first frame %+v, want a snapshot without gap", round, snap)
		}
		for _, w := range eventsOf(snap) {
			if round == 0 && w.Type == wire.TypeGift {
				t.Fatalf("a fresh join's snapshot carries danmaku only, got %+v", w)
			}
		}
		evs := eventsOf(snap)
		for len(evs) < 5 {
			evs = append(evs, eventsOf(v.next(5*time.Second))...)
		}
		for _, w := range evs {
			if round > 0 || len(seen) > 0 || w.Type == wire.TypeDanmaku {
				seen = append(seen, w.Seq)
			}
		}
		last = seen[len(seen)-1]
		v.ws.Close() // drop; events keep coming meanwhile
	}
	close(stop)
	<-done
	// From the first event seen, every produced seq up to the last seen
	// appears once, in order.
	first := seen[0]
	var want []int64
	for _, s := range produced {
		if s >= first && s <= last {
			want = append(want, s)
		}
	}
	if fmt.Sprint(seen) != fmt.Sprint(want) {
		t.Fatalf("events seen across reconnects:\n%v\nwant (produced in that range):\n%v", seen, want)
	}
}

// TestSnapshotFromRedis: on a node with no viewer in the room yet, the
// snapshot comes from Redis (the room owner's {r<id>}:state and
// {r<id>}:recent): the latest leaderboard and pk, the recent danmaku (or
// those after ?since=), and the head-count including the joiner.
func TestSnapshotFromRedis(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	n := e.node(push.Config{})
	e.openRoom(5)
	ctx := context.Background()
	key := func(kind string) string { return wire.Key(e.prefix, 5, kind) }
	lb := `{"type":"leaderboard","room_id":5,"version":17,"items":[{"user_id":42,"score":1200}]}`
	pk := `{"type":"pk","room_id":5,"version":3,"pk_id":"p1","room_a":5,"room_b":6,"score_a":60,"score_b":40,"winner":0}`
	if err := e.rdb.HSet(ctx, key(wire.KindState), wire.TypeLeaderboard, lb, wire.TypePK, pk).Err(); err != nil {
		t.Fatal(err)
	}
	for seq := 10; seq <= 14; seq++ { // LPUSH: newest first
		f := fmt.Sprintf(`{"type":"danmaku","room_id":5,"user_id":1,"text":"old %d","ts":1,"id":"e%d","seq":%d}`, seq, seq, seq)
		if err := e.rdb.LPush(ctx, key(wire.KindRecent), f).Err(); err != nil {
			t.Fatal(err)
		}
	}
	v := e.dial(n, 5, 1, "")
	s := v.next(5 * time.Second)
	if s.Leaderboard == nil || s.Leaderboard.Version != 17 || s.PK == nil || s.PK.Version != 3 {
		t.Fatalf("snapshot %+v: want leaderboard v17 and pk v3 from Redis", s)
	}
	if s.Online == nil || s.Online.Count != 1 {
		t.Fatalf("snapshot online %+v, want 1 (the joiner)", s.Online)
	}
	if len(s.Recent) != 5 || s.Recent[0].Seq != 10 || s.Recent[4].Seq != 14 || s.Seq != 14 {
		t.Fatalf("snapshot recent %+v seq %d, want seqs 10..14 oldest first, seq 14", s.Recent, s.Seq)
	}
	// A second node, a reconnect that had seen up to 12.
	n2 := e.node(push.Config{})
	v2 := e.dial(n2, 5, 2, "&since=12")
	s2 := v2.next(5 * time.Second)
	if len(s2.Recent) != 2 || s2.Recent[0].Seq != 13 || s2.Recent[1].Seq != 14 {
		t.Fatalf("reconnect snapshot recent %+v, want 13 and 14", s2.Recent)
	}
}

// TestHeadCountAcrossNodes: each node pushes the room's head-count summed
// over every node (a merged counter in Redis); a node that leaves is
// subtracted.
func TestHeadCountAcrossNodes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	cfg := push.Config{OnlineInterval: 100 * time.Millisecond, ShutdownWindow: time.Millisecond}
	n1, n2 := e.node(cfg), e.node(cfg)
	e.openRoom(5)
	v := e.dial(n1, 5, 1, "")
	for u := range 3 {
		e.dial(n2, 5, uint64(10+u), "")
	}
	waitOnline := func(want int64) {
		t.Helper()
		v.online(func(n int64) bool { return n == want }, "online frame with count %d", want)
	}
	waitOnline(4)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := n2.gw.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	waitOnline(1)
}

// TestShutdownClosesConnections: Shutdown refuses new upgrades (503) and
// closes every connection with 3001 "shutdown".
func TestShutdownClosesConnections(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	n := e.node(push.Config{ShutdownWindow: 300 * time.Millisecond})
	e.openRoom(5)
	var vs []*viewer
	for u := range 4 {
		v := e.dial(n, 5, uint64(u+1), "")
		v.next(5 * time.Second)
		vs = append(vs, v)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	t0 := time.Now()
	if err := n.gw.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(t0); d < 200*time.Millisecond {
		t.Fatalf("4 closes took %s, want them spread over the 300ms window", d)
	}
	for _, v := range vs {
		if code, reason := v.closeCode(5 * time.Second); code != push.DisconnectShutdown.Code || reason != "shutdown" {
			t.Fatalf("closed with %d %q, want 3001 shutdown", code, reason)
		}
	}
	auth := http.Header{"Authorization": {"Bearer " + testenv.SignToken(t, e.secret, 1, "")}}
	if status, _ := e.refusal(n, "?room=5", auth); status != 503 {
		t.Fatalf("upgrade after shutdown: HTTP %d, want 503", status)
	}
}
