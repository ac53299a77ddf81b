package api

import (
	"net/http"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/onair/onair/ingest"
	"github.com/onair/onair/internal/testenv"
	"github.com/onair/onair/push/board"
)

// newRoomsEnv is a test server with the live-room routes on a real Board
// (its own Redis prefix and kfake cluster).
func newRoomsEnv(t *testing.T) *env {
	t.Helper()
	e := newEnv(t, nil)
	rdb, prefix := testenv.Redis(t)
	kcl, err := kgo.NewClient(kgo.SeedBrokers(testenv.Kafka(t, 2).Addrs()...), kgo.RequiredAcks(kgo.AllISRAcks()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kcl.Close)
	ids, _ := ingest.NewIDGen(1)
	prod, err := ingest.NewProducer(ingest.ProducerConfig{Client: kcl, IDs: ids})
	if err != nil {
		t.Fatal(err)
	}
	b, err := board.New(board.Config{Redis: rdb, Prefix: prefix, Kafka: kcl, Events: prod, DanmakuRate: 1, MaxText: 10})
	if err != nil {
		t.Fatal(err)
	}
	MountRooms(e.s, b)
	return e
}

// TestRoomRoutesRefuseBadInput walks the refusals of the live-room routes:
// each one's status, code and the field it names.
func TestRoomRoutesRefuseBadInput(t *testing.T) {
	t.Parallel()
	e := newRoomsEnv(t)
	anchor, viewer, admin := token(t, 8, ""), token(t, 42, ""), token(t, 1, RoleAdmin)
	for _, room := range []string{"5", "6", "7"} {
		if r := e.post("/v1/rooms/"+room+"/open", anchor, ""); r.status != http.StatusOK {
			t.Fatalf("open room %s: %d %s", room, r.status, r.body)
		}
	}
	if r := e.post("/v1/rooms/7/close", anchor, ""); r.status != http.StatusOK {
		t.Fatalf("close room 7: %d %s", r.status, r.body)
	}
	if r := e.do("PUT", "/v1/admin/blocked-words", admin, strings.NewReader(`{"words":["Spam"]}`)); r.status != http.StatusOK {
		t.Fatalf("set blocked words: %d %s", r.status, r.body)
	}
	f := func(method, path, tok, body string, status int, code, field string) {
		t.Helper()
		wantError(t, e.do(method, path, tok, strings.NewReader(body)), status, code, field)
	}
	bad, conflict := http.StatusBadRequest, http.StatusConflict
	f("POST", "/v1/rooms/x/danmaku", viewer, `{"text":"hi"}`, bad, CodeInvalidArgument, "id")
	f("POST", "/v1/rooms/5/danmaku", viewer, `{"text":"  "}`, bad, CodeInvalidArgument, "text")
	f("POST", "/v1/rooms/5/danmaku", viewer, `{"text":"eleven chars"}`, bad, CodeInvalidArgument, "text")
	f("POST", "/v1/rooms/5/danmaku", viewer, `{"text":"buy SPAM"}`, bad, CodeInvalidArgument, "text")
	f("POST", "/v1/rooms/5/danmaku", viewer, `{"text":7}`, bad, CodeInvalidArgument, "text")
	f("POST", "/v1/rooms/5/danmaku", viewer, `{"text":"hi","event_id":"`+strings.Repeat("x", 65)+`"}`, bad, CodeInvalidArgument, "event_id")
	f("POST", "/v1/rooms/99/danmaku", viewer, `{"text":"hi"}`, http.StatusNotFound, CodeNotFound, "")
	f("POST", "/v1/rooms/7/danmaku", viewer, `{"text":"hi"}`, conflict, CodeFailedPrecondition, "room_id")
	f("POST", "/v1/rooms/5/gifts", viewer, `{"value":200}`, bad, CodeInvalidArgument, "gift_id")
	f("POST", "/v1/rooms/5/gifts", viewer, `{"gift_id":2,"value":0}`, bad, CodeInvalidArgument, "value")
	f("POST", "/v1/rooms/5/gifts", viewer, `{"gift_id":2,"value":"200"}`, bad, CodeInvalidArgument, "value")
	f("POST", "/v1/rooms/5/gifts", viewer, `{"gift_id":2,"value":200,"anchor_id":9}`, bad, CodeInvalidArgument, "anchor_id")
	f("POST", "/v1/rooms/7/gifts", viewer, `{"gift_id":2,"value":200}`, conflict, CodeFailedPrecondition, "room_id")
	f("POST", "/v1/rooms/5/close", viewer, ``, http.StatusForbidden, CodePermissionDenied, "")
	f("POST", "/v1/rooms/98/close", viewer, ``, http.StatusNotFound, CodeNotFound, "")
	f("POST", "/v1/pk", anchor, `{"room_a":5,"room_b":5}`, bad, CodeInvalidArgument, "room_b")
	f("POST", "/v1/pk", anchor, `{"room_b":5}`, bad, CodeInvalidArgument, "room_a")
	f("POST", "/v1/pk", anchor, `{"room_a":7,"room_b":5}`, conflict, CodeFailedPrecondition, "room_a")
	f("POST", "/v1/pk", viewer, `{"room_a":5,"room_b":6}`, http.StatusForbidden, CodePermissionDenied, "")
	f("GET", "/v1/rooms/5/leaderboard?limit=101", viewer, ``, bad, CodeInvalidArgument, "limit")
	f("GET", "/v1/rooms?live=maybe", viewer, ``, bad, CodeInvalidArgument, "live")
	f("GET", "/v1/leaderboards/plays?window=hour", viewer, ``, bad, CodeInvalidArgument, "biz")
	f("GET", "/v1/leaderboards/plays?biz=audio&window=month", viewer, ``, bad, CodeInvalidArgument, "window")
	f("GET", "/v1/leaderboards/plays?biz=audio&window=day&limit=0", viewer, ``, bad, CodeInvalidArgument, "limit")
	f("PUT", "/v1/admin/blocked-words", viewer, `{"words":["x"]}`, http.StatusForbidden, CodePermissionDenied, "")
	f("PUT", "/v1/admin/blocked-words", admin, `{"words":["ok"," "]}`, bad, CodeInvalidArgument, "words[1]")

	// Accepted ones, then the per-user, per-room rate (1/s, burst 3).
	if r := e.post("/v1/rooms/5/gifts", viewer, `{"gift_id":2,"value":200,"anchor_id":8}`); r.status != http.StatusAccepted {
		t.Fatalf("gift: %d %s", r.status, r.body)
	}
	for i := range 3 {
		if r := e.post("/v1/rooms/5/danmaku", viewer, `{"text":"hi"}`); r.status != http.StatusAccepted || !strings.Contains(r.body, `"seq":`) {
			t.Fatalf("danmaku %d: %d %s", i, r.status, r.body)
		}
	}
	// The burst is spent; on a slow machine a token may have come back
	// meanwhile, so allow a few more before the refusal.
	for i := 0; ; i++ {
		r := e.post("/v1/rooms/5/danmaku", viewer, `{"text":"hi"}`)
		if r.status == http.StatusAccepted && i < 5 {
			continue
		}
		wantError(t, r, http.StatusTooManyRequests, CodeRateLimited, "text")
		break
	}
	if r := e.post("/v1/rooms/6/danmaku", viewer, `{"text":"hi"}`); r.status != http.StatusAccepted {
		t.Fatalf("the rate is per room: danmaku in room 6: %d %s", r.status, r.body)
	}
}
