package board

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/onair/onair/ingest"
	"github.com/onair/onair/internal/kafka"
)

// TestDanmakuLandsInEventsThenPushesAndRecent checks the order of effects
// of a danmaku: the event in the events topic, the frame on pushes (keyed
// by the room, with the event's id), and the recent list holding the frame
// with seq = the frame's offset, newest first, trimmed to RecentDanmaku.
func TestDanmakuLandsInEventsThenPushesAndRecent(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 2, func(c *Config) { c.DanmakuRate = -1 })
	ctx := ctxT(t)
	w.open(5, 8)
	n := RecentDanmaku + 5
	for i := range n {
		if _, err := w.b.Danmaku(ctx, 5, Caller{UserID: 42}, fmt.Sprintf(" hi %d ", i), ""); err != nil {
			t.Fatal(err)
		}
	}
	events := 0
	for _, r := range w.records(kafka.TopicEvents) {
		var ev ingest.Event
		if err := ingest.DecodeRecord(r.Value, &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Type == ingest.TypeDanmaku && ev.RoomID == 5 && ev.UserID == 42 {
			events++
		}
	}
	if events != n {
		t.Fatalf("events topic holds %d danmaku events, want %d", events, n)
	}
	fs := ofType(w.frames(5), "danmaku")
	if len(fs) != n {
		t.Fatalf("%d danmaku frames on pushes, want %d", len(fs), n)
	}
	if fs[0].v["text"] != "hi 0" || fs[0].v["user_id"] != float64(42) || fs[0].v["id"] == "" {
		t.Fatalf("first frame %v", fs[0].v)
	}
	recent, err := w.rdb.LRange(ctx, w.b.roomKey(5, kindRecent), 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(recent) != RecentDanmaku {
		t.Fatalf("recent list has %d frames, want %d", len(recent), RecentDanmaku)
	}
	for i, s := range recent {
		var f DanmakuFrame
		if err := json.Unmarshal([]byte(s), &f); err != nil {
			t.Fatal(err)
		}
		want := fs[n-1-i] // newest first
		if f.Seq == nil || *f.Seq != want.offset || f.ID != want.v["id"] {
			t.Fatalf("recent[%d] = %s, want seq %d and id %v", i, s, want.offset, want.v["id"])
		}
	}
}

func TestGiftFrameCarriesTheEventID(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 2, nil)
	ctx := ctxT(t)
	w.open(6, 8)
	f, err := w.b.Gift(ctx, 6, Caller{UserID: 42}, GiftInput{GiftID: 2, Value: 200, EventID: "client-1"})
	if err != nil {
		t.Fatal(err)
	}
	if f.AnchorID != 8 || f.ID != "client-1" {
		t.Fatalf("gift frame %+v: want the room's anchor 8 and the client's id", f)
	}
	gs := ofType(w.frames(6), "gift")
	if len(gs) != 1 || gs[0].v["id"] != "client-1" || gs[0].v["value"] != float64(200) || gs[0].v["anchor_id"] != float64(8) {
		t.Fatalf("gift frames on pushes: %v", gs)
	}
}
