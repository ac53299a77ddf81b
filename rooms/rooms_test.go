package rooms

import (
	"fmt"
	"testing"
	"time"

	"github.com/onair/onair/rooms/wire"
)

// TestPutRoomKeepsTheNewestVersionAndFrames: the hot copy takes a room's
// state in version order (an older write, such as a rebuild that read
// PostgreSQL before a close, changes nothing), a status change publishes
// one room frame, and live rooms page newest opening first.
func TestPutRoomKeepsTheNewestVersionAndFrames(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 2, nil)
	ctx := ctxT(t)
	ms := time.Now().UnixMilli()
	put := func(room uint64, open bool, ver, opened int64) Room {
		t.Helper()
		r, err := w.b.PutRoom(ctx, RoomState{RoomID: room, Open: open, AnchorID: 7, OpenedAt: opened, Ver: ver, Title: "t"})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if r := put(1, true, 1, ms); r.Status != "open" || r.AnchorID != 7 || r.Version != 1 {
		t.Fatalf("open: %+v", r)
	}
	if r := put(1, false, 2, ms); r.Status != "closed" || r.Version != 2 {
		t.Fatalf("close: %+v", r)
	}
	if r := put(1, true, 1, ms); r.Status != "closed" || r.Version != 2 {
		t.Fatalf("a stale open (version 1) undid the close (version 2): %+v", r)
	}
	put(1, true, 3, ms)
	put(1, true, 4, ms) // same status: no frame
	var got []string
	for _, f := range ofType(w.frames(1), wire.TypeRoom) {
		got = append(got, fmt.Sprintf("%v/%v", f.v["status"], f.v["version"]))
	}
	if fmt.Sprint(got) != "[open/1 closed/2 open/3]" {
		t.Fatalf("room frames of room 1: %v, want [open/1 closed/2 open/3]", got)
	}
	// Rooms 2..6 open in the same millisecond as room 1, room 7 later;
	// room 8 is closed. Pages of two: 7, then 6 5, 4 3, 2 1.
	for id := uint64(2); id <= 6; id++ {
		put(id, true, 1, ms)
	}
	put(7, true, 1, ms+5)
	put(8, false, 1, 0)
	var pages []string
	var after *LiveCursor
	for i := 0; i < 10; i++ {
		rs, next, err := w.b.LiveRooms(ctx, after, 2)
		if err != nil {
			t.Fatal(err)
		}
		var ids []uint64
		for _, r := range rs {
			ids = append(ids, r.RoomID)
		}
		pages = append(pages, fmt.Sprint(ids))
		if next == nil {
			break
		}
		after = next
	}
	if fmt.Sprint(pages) != "[[7 6] [5 4] [3 2] [1]]" {
		t.Fatalf("live pages %v, want [[7 6] [5 4] [3 2] [1]]", pages)
	}
}
