package rooms

import (
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/onair/onair/ingest"
	"github.com/onair/onair/internal/kafka"
	"github.com/onair/onair/rooms/wire"
)

// TestDanmakuLandsInEventsThenPushesAndRecent checks the order of effects
// of a danmaku: the event in the events topic, the frame on pushes (keyed
// by the room, with the event's id), and the recent list holding the frame
// with seq = the frame's offset, newest first, trimmed to wire.RecentDanmaku.
func TestDanmakuLandsInEventsThenPushesAndRecent(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 2, func(c *Config) { c.DanmakuRate = -1 })
	ctx := ctxT(t)
	w.open(5, 8)
	n := wire.RecentDanmaku + 5
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
	fs := ofType(w.frames(5), wire.TypeDanmaku)
	if len(fs) != n {
		t.Fatalf("%d danmaku frames on pushes, want %d", len(fs), n)
	}
	if fs[0].v["text"] != "hi 0" || fs[0].v["user_id"] != float64(42) || fs[0].v["id"] == "" {
		t.Fatalf("first frame %v", fs[0].v)
	}
	recent, err := w.rdb.LRange(ctx, w.b.roomKey(5, wire.KindRecent), 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(recent) != wire.RecentDanmaku {
		t.Fatalf("recent list has %d frames, want %d", len(recent), wire.RecentDanmaku)
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

// TestGiftRetryKeepsItsFirstTS posts a gift, then its retry (same
// event_id) 20 minutes later by the server's clock: the frame carries the
// client's id and the room's anchor, and both records carry the first
// attempt's ts, so the aggregator's dedupe (by user and ts bucket) meets
// them and onair.events stores the gift once.
func TestGiftRetryKeepsItsFirstTS(t *testing.T) {
	t.Parallel()
	var now atomic.Int64
	now.Store(time.Now().UnixMilli())
	w := newWorld(t, 2, func(c *Config) { c.Now = func() time.Time { return time.UnixMilli(now.Load()) } })
	ctx := ctxT(t)
	w.open(6, 8)
	first := now.Load()
	for range 2 {
		f, err := w.b.Gift(ctx, 6, Caller{UserID: 42}, GiftInput{GiftID: 2, Value: 200, EventID: "client-1"})
		if err != nil {
			t.Fatal(err)
		}
		if f.AnchorID != 8 || f.ID != "client-1" || f.TS != first {
			t.Fatalf("gift frame %+v: want the room's anchor 8, the client's id and ts %d", f, first)
		}
		now.Add((20 * time.Minute).Milliseconds())
	}
	var tss []int64
	for _, r := range w.records(kafka.TopicEvents) {
		var ev ingest.Event
		if err := ingest.DecodeRecord(r.Value, &ev); err != nil {
			t.Fatal(err)
		}
		tss = append(tss, ev.TS)
	}
	if fmt.Sprint(tss) != fmt.Sprint([]int64{first, first}) {
		t.Fatalf("events carry ts %v, want the first attempt's %d twice", tss, first)
	}
	gs := ofType(w.frames(6), wire.TypeGift)
	if len(gs) != 2 || gs[0].v["id"] != "client-1" || gs[0].v["value"] != float64(200) || gs[0].v["anchor_id"] != float64(8) {
		t.Fatalf("gift frames on pushes: %v", gs)
	}
}
