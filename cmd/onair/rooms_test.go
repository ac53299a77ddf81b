package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/onair/onair/internal/testenv"
)

// TestServeLiveRooms runs `onair serve --roles api,aggregate` and walks the
// live-room wiring end to end: a room opened over HTTP is listed, a paid
// gift's 202 shows up in the room ranking (through the outbox relay, Kafka and the aggregator), and
// play events show up in the hourly play leaderboard (through ClickHouse's
// rollup and the board's refresh).
func TestServeLiveRooms(t *testing.T) {
	t.Parallel()
	kf := testenv.Kafka(t, 4)
	s := startServe(t, kf.Addrs(), "--roles", "api,aggregate")
	anchor, viewer := s.token(t, 8, ""), s.token(t, 42, "")
	if code, body := do(t, http.MethodPost, s.url+"/v1/rooms/5/open", anchor, nil); code != http.StatusOK {
		t.Fatalf("open: %d %s", code, body)
	}
	if got := getOK(t, s.url+"/v1/rooms?live=true", viewer); !strings.Contains(got, `"room_id":5,"status":"open","anchor_id":8`) {
		t.Fatalf("live rooms: %s", got)
	}
	if code, body := do(t, http.MethodPost, s.url+"/v1/wallet/recharge", viewer, map[string]any{"order_id": "o1", "coins": 1000}); code != http.StatusOK {
		t.Fatalf("recharge: %d %s", code, body)
	}
	postOK(t, s.url+"/v1/rooms/5/gifts", viewer, map[string]any{"gift_id": 2, "count": 1})                   // a rocket: 200
	postOK(t, s.url+"/v1/rooms/5/gifts", viewer, map[string]any{"gift_id": 3, "count": 5, "event_id": "g1"}) // 5 hearts: 50
	postOK(t, s.url+"/v1/rooms/5/gifts", viewer, map[string]any{"gift_id": 3, "count": 5, "event_id": "g1"}) // a retry
	want := `{"items":[{"user_id":42,"score":250}]`
	testenv.Wait(t, 30*time.Second, func() bool {
		return strings.HasPrefix(getOK(t, s.url+"/v1/rooms/5/leaderboard", viewer), want)
	}, "the ranking to read %s", want)

	// The hourly window must not roll over between the post and the read.
	testenv.Wait(t, 70*time.Second, func() bool { return time.Until(time.Now().Truncate(time.Hour).Add(time.Hour)) > time.Minute },
		"the next hour to start")
	now := time.Now().UnixMilli()
	var plays []map[string]any
	for i := range 3 {
		plays = append(plays, map[string]any{"type": "play", "biz": "audio", "item_id": 77, "listened_ms": 30000, "ts": now, "event_id": fmt.Sprint("p", i)})
	}
	postOK(t, s.url+"/v1/events", viewer, map[string]any{"events": plays})
	want = `{"items":[{"item_id":77,"score":3}]}`
	testenv.Wait(t, 40*time.Second, func() bool {
		return getOK(t, s.url+"/v1/leaderboards/plays?biz=audio&window=hour", viewer) == want
	}, "the hourly play leaderboard to read %s", want)
}
