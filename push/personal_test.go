package push_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/onair/onair/internal/kafka"
	"github.com/onair/onair/internal/testenv"
	"github.com/onair/onair/push"
	"github.com/onair/onair/rooms/wire"
)

// dialPersonal opens GET /v1/ws without room: a personal-only connection.
func (e *env) dialPersonal(n *node, user uint64) *viewer {
	e.t.Helper()
	u := "ws" + strings.TrimPrefix(n.srv.URL, "http") + "/v1/ws?token=" + testenv.SignToken(e.t, e.secret, user, "")
	ws, resp, err := websocket.DefaultDialer.Dial(u, nil)
	if err != nil {
		e.t.Fatalf("dial personal: %v %v", err, resp)
	}
	e.t.Cleanup(func() { ws.Close() })
	return &viewer{t: e.t, ws: ws}
}

// TestPersonalChannel: a frame notified to a user reaches each of their
// connections on two push nodes, a personal-only one and one in a room,
// once each and to no one else; a personal-only connection answers pings;
// frames for a user without connections are counted, not delivered.
func TestPersonalChannel(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a, b := e.node(push.Config{}), e.node(push.Config{})
	e.openRoom(5)
	personal := e.dialPersonal(a, 42)
	inRoom := e.dial(b, 5, 42, "")
	stranger := e.dial(b, 5, 43, "")
	for _, v := range []*viewer{inRoom, stranger} {
		if s := v.next(5 * time.Second); s.Type != push.TypeSnapshot {
			t.Fatalf("first frame %+v", s)
		}
	}
	personal.send(`{"type":"ping"}`)
	if m := personal.next(5 * time.Second); m.Type != push.TypePong {
		t.Fatalf("personal-only connection answered %+v to a ping", m)
	}
	n := &push.Notifier{Kafka: e.prod, Topic: kafka.TopicPushes}
	ctx := context.Background()
	inv := wire.PKInviteFrame{Type: wire.TypePKInvite, ID: "pk_invite:7", PKID: "7", RoomA: 6, RoomB: 5, FromUserID: 9, ExpiresAt: time.Now().Add(30 * time.Second).UnixMilli()}
	if err := n.Notify(ctx, 42, inv); err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]*viewer{"personal-only": personal, "in a room": inRoom} {
		m := v.next(5 * time.Second)
		for m.Type == push.TypeBatch { // the room's own frames (head-counts)
			m = v.next(5 * time.Second)
		}
		if m.Type != wire.TypePKInvite || m.ID != "pk_invite:7" {
			t.Fatalf("%s connection got %+v, want the pk_invite", name, m)
		}
	}
	if err := n.Notify(ctx, 99, wire.NoticeFrame{Type: wire.TypeNotice, ID: "n1", Kind: "gift_failed", Message: "not enough coins"}); err != nil {
		t.Fatal(err)
	}
	if err := n.Notify(ctx, 43, "not an object"); err == nil {
		t.Fatal("Notify took a frame without a type")
	}
	e.produce(5, danmaku(5, 43, "after the invite"))
	if got := stranger.events(1, 5*time.Second); got[0].Text != "after the invite" {
		t.Fatalf("the stranger got %+v before the room's danmaku: someone else's personal frame?", got)
	}
	testenv.Wait(t, 5*time.Second, func() bool {
		return counter(t, a.reg, "onair_push_records_total", "outcome", "personal_no_conn") >= 1 &&
			counter(t, a.reg, "onair_push_records_total", "outcome", "personal") == 1 &&
			counter(t, b.reg, "onair_push_records_total", "outcome", "personal") == 1
	}, "each node to count the invite delivered once and the notice to nobody")
}
