package push_test

import (
	"context"
	"testing"
	"time"

	"github.com/onair/onair/push"
	"github.com/onair/onair/rooms"
	"github.com/onair/onair/rooms/wire"
)

// TestHeadCountAgreesWithRooms: the head-count viewers get in online frames
// and the one GET /v1/rooms reads (rooms.Board) are one number, also when
// the room's online keys hold what no live node wrote: a count whose
// expiry was lost (the case the two once summed differently), a node that
// died, an expiry whose count was lost.
func TestHeadCountAgreesWithRooms(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	e.openRoom(5)
	counts, seen := wire.Key(e.prefix, 5, wire.KindOnline), wire.Key(e.prefix, 5, wire.KindOnlineSeen)
	if err := e.rdb.HSet(ctx, counts, "lost-expiry", 100, "dead", 7).Err(); err != nil {
		t.Fatal(err)
	}
	if err := e.rdb.HSet(ctx, seen, "dead", 1, "lost-count", time.Now().Add(time.Hour).UnixMilli()).Err(); err != nil {
		t.Fatal(err)
	}
	n := e.node(push.Config{OnlineInterval: 50 * time.Millisecond})
	v := e.dial(n, 5, 1, "")
	e.dial(n, 5, 2, "")
	// Both viewers are in every count from here on, whatever the rule.
	pushed := v.online(func(n int64) bool { return n >= 2 }, "online frame counting both viewers")
	b, err := rooms.New(rooms.Config{Redis: e.rdb, Prefix: e.prefix, Kafka: e.prod})
	if err != nil {
		t.Fatal(err)
	}
	r, err := b.GetRoom(ctx, 5)
	if err != nil {
		t.Fatal(err)
	}
	if r.Online != pushed {
		t.Fatalf("rooms reads online %d, push sends %d: the two head-counts disagree", r.Online, pushed)
	}
}
