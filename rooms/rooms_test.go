package rooms

import (
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/onair/onair/internal/refusal"
	"github.com/onair/onair/rooms/wire"
)

func TestRoomsAnchorRuleAndFrames(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 2, nil)
	ctx := ctxT(t)
	kindOf := func(err error) refusal.Kind {
		if e, ok := refusal.As(err); ok {
			return e.Kind
		}
		return 0
	}
	// The first user to open a room becomes its anchor.
	r, err := w.b.SetRoom(ctx, 1, true, Caller{UserID: 7}, 0)
	if err != nil || r.AnchorID != 7 || r.Status != "open" {
		t.Fatalf("first open: %+v, %v", r, err)
	}
	if _, err := w.b.SetRoom(ctx, 1, false, Caller{UserID: 8}, 0); kindOf(err) != refusal.Forbidden {
		t.Fatalf("close by another user: %v, want Forbidden", err)
	}
	if _, err := w.b.SetRoom(ctx, 99, false, Caller{UserID: 8}, 0); kindOf(err) != refusal.NotFound {
		t.Fatalf("close of a room never opened: %v, want NotFound", err)
	}
	w.open(2, 8)
	live, err := w.b.List(ctx, true, 10)
	if err != nil || len(live) != 2 {
		t.Fatalf("live rooms: %+v, %v", live, err)
	}
	if _, err := w.b.SetRoom(ctx, 1, false, Caller{UserID: 7}, 0); err != nil {
		t.Fatalf("close by the anchor: %v", err)
	}
	// Push nodes publish the viewers of room 2: five live ones, and two
	// whose expiry passed (their node died) which no longer count
	// (wire.HeadCountMin).
	exp := float64(time.Now().Add(time.Minute).UnixMilli())
	viewers := []redis.Z{{Score: exp, Member: 1}, {Score: exp, Member: 2}, {Score: exp, Member: 3}, {Score: exp, Member: 4}, {Score: exp, Member: 5}, {Score: 1, Member: 6}, {Score: 1, Member: 7}}
	w.rdb.ZAdd(ctx, w.b.roomKey(2, wire.KindViewers), viewers...)
	live, _ = w.b.List(ctx, true, 10)
	all, _ := w.b.List(ctx, false, 10)
	if len(live) != 1 || live[0].RoomID != 2 || live[0].Online != 5 || len(all) != 2 {
		t.Fatalf("after close: live %+v, all %+v", live, all)
	}
	// An admin names another anchor; the old one loses the room.
	if r, err = w.b.SetRoom(ctx, 1, true, Caller{UserID: 1, Admin: true}, 9); err != nil || r.AnchorID != 9 {
		t.Fatalf("admin open naming anchor 9: %+v, %v", r, err)
	}
	if _, err := w.b.SetRoom(ctx, 1, false, Caller{UserID: 7}, 0); kindOf(err) != refusal.Forbidden {
		t.Fatalf("the old anchor closed the room: %v", err)
	}
	// Opening an open room changes nothing and publishes nothing.
	if _, err := w.b.SetRoom(ctx, 1, true, Caller{UserID: 9}, 0); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range ofType(w.frames(1), wire.TypeRoom) {
		got = append(got, fmt.Sprintf("%v/%v", f.v["status"], f.v["version"]))
	}
	if fmt.Sprint(got) != "[open/1 closed/2 open/3]" {
		t.Fatalf("room frames of room 1: %v, want [open/1 closed/2 open/3]", got)
	}
}
