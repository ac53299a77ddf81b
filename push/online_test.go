package push_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/onair/onair/push"
	"github.com/onair/onair/rooms"
	"github.com/onair/onair/rooms/wire"
)

// TestHeadCountAgreesWithRooms: the head-count viewers get in online frames
// and the one GET /v1/rooms reads (rooms.Board) are one number, also when
// the room's viewer set holds what no live node refreshes: a viewer of a
// node that died (expiry passed, not yet pruned) and one another node
// still reports. A user on three connections counts once.
func TestHeadCountAgreesWithRooms(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	e.openRoom(5)
	key := wire.Key(e.prefix, 5, wire.KindViewers)
	if err := e.rdb.ZAdd(ctx, key, redis.Z{Score: 1, Member: "900"}, redis.Z{Score: float64(time.Now().Add(time.Hour).UnixMilli()), Member: "901"}).Err(); err != nil {
		t.Fatal(err)
	}
	n := e.node(push.Config{OnlineInterval: 50 * time.Millisecond})
	v := e.dial(n, 5, 1, "")
	e.dial(n, 5, 1, "")
	e.dial(n, 5, 1, "")
	e.dial(n, 5, 2, "")
	// Users 1, 2 and 901 count from here on; 900 never again.
	pushed := v.online(func(n int64) bool { return n >= 3 }, "online frame counting users 1, 2 and 901")
	if pushed != 3 {
		t.Fatalf("online %d, want 3 (users 1, 2 and 901; user 1's three connections once)", pushed)
	}
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
