package api

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/onair/onair/aggregate"
	"github.com/onair/onair/ingest"
	"github.com/onair/onair/internal/pgdb/pgtest"
	"github.com/onair/onair/internal/refusal"
	"github.com/onair/onair/internal/testenv"
	"github.com/onair/onair/rooms"
	"github.com/onair/onair/wallet"
)

// roomsEnv is a test server with the live-room routes on a real Board
// (its own Redis prefix and kfake cluster).
type roomsEnv struct {
	*env
	b      *rooms.Board
	rdb    *redis.Client
	prefix string
}

func newRoomsEnv(t *testing.T) *roomsEnv {
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
	b, err := rooms.New(rooms.Config{Redis: rdb, Prefix: prefix, Kafka: kcl, Events: prod, DanmakuRate: 1, MaxText: 10})
	if err != nil {
		t.Fatal(err)
	}
	MountRooms(e.s, b)
	w, err := wallet.New(wallet.Config{DB: pgtest.DB(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := MountWallet(e.s, WalletRoutes{Wallet: w, Anchors: b, Effects: b}); err != nil {
		t.Fatal(err)
	}
	return &roomsEnv{env: e, b: b, rdb: rdb, prefix: prefix}
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
	f("POST", "/v1/rooms/x/danmaku", viewer, `{"text":"hi"}`, bad, refusal.CodeInvalidArgument, "id")
	f("POST", "/v1/rooms/5/danmaku", viewer, `{"text":"  "}`, bad, refusal.CodeInvalidArgument, "text")
	f("POST", "/v1/rooms/5/danmaku", viewer, `{"text":"eleven chars"}`, bad, refusal.CodeInvalidArgument, "text")
	f("POST", "/v1/rooms/5/danmaku", viewer, `{"text":"buy SPAM"}`, bad, refusal.CodeInvalidArgument, "text")
	f("POST", "/v1/rooms/5/danmaku", viewer, `{"text":7}`, bad, refusal.CodeInvalidArgument, "text")
	f("POST", "/v1/rooms/5/danmaku", viewer, `{"text":"hi","event_id":"`+strings.Repeat("x", 65)+`"}`, bad, refusal.CodeInvalidArgument, "event_id")
	f("POST", "/v1/rooms/99/danmaku", viewer, `{"text":"hi"}`, http.StatusNotFound, refusal.CodeNotFound, "")
	f("POST", "/v1/rooms/7/danmaku", viewer, `{"text":"hi"}`, conflict, refusal.CodeFailedPrecondition, "room_id")
	f("POST", "/v1/rooms/5/gifts", viewer, `{"count":1}`, bad, refusal.CodeInvalidArgument, "gift_id")
	f("POST", "/v1/rooms/5/gifts", viewer, `{"gift_id":2,"count":0}`, bad, refusal.CodeInvalidArgument, "count")
	f("POST", "/v1/rooms/5/gifts", viewer, `{"gift_id":2,"count":"1"}`, bad, refusal.CodeInvalidArgument, "count")
	f("POST", "/v1/rooms/5/gifts", viewer, `{"gift_id":2,"count":1001}`, bad, refusal.CodeInvalidArgument, "count")
	f("POST", "/v1/rooms/5/gifts", viewer, `{"gift_id":77,"count":1}`, bad, refusal.CodeInvalidArgument, "gift_id")
	f("POST", "/v1/rooms/5/gifts", viewer, `{"gift_id":2,"count":1}`, http.StatusPaymentRequired, refusal.CodeInsufficientFunds, "count")
	f("POST", "/v1/rooms/7/gifts", viewer, `{"gift_id":2,"count":1}`, conflict, refusal.CodeFailedPrecondition, "room_id")
	f("POST", "/v1/rooms/99/gifts", viewer, `{"gift_id":2,"count":1}`, http.StatusNotFound, refusal.CodeNotFound, "")
	f("POST", "/v1/rooms/5/close", viewer, ``, http.StatusForbidden, refusal.CodePermissionDenied, "")
	f("POST", "/v1/rooms/98/close", viewer, ``, http.StatusNotFound, refusal.CodeNotFound, "")
	f("POST", "/v1/pk", anchor, `{"room_a":5,"room_b":5}`, bad, refusal.CodeInvalidArgument, "room_b")
	f("POST", "/v1/pk", anchor, `{"room_b":5}`, bad, refusal.CodeInvalidArgument, "room_a")
	f("POST", "/v1/pk", anchor, `{"room_a":7,"room_b":5}`, conflict, refusal.CodeFailedPrecondition, "room_a")
	f("POST", "/v1/pk", viewer, `{"room_a":5,"room_b":6}`, http.StatusForbidden, refusal.CodePermissionDenied, "")
	f("GET", "/v1/rooms/5/leaderboard?limit=101", viewer, ``, bad, refusal.CodeInvalidArgument, "limit")
	f("GET", "/v1/rooms?live=maybe", viewer, ``, bad, refusal.CodeInvalidArgument, "live")
	f("GET", "/v1/leaderboards/plays?window=hour", viewer, ``, bad, refusal.CodeInvalidArgument, "biz")
	f("GET", "/v1/leaderboards/plays?biz=audio&window=month", viewer, ``, bad, refusal.CodeInvalidArgument, "window")
	f("GET", "/v1/leaderboards/plays?biz=audio&window=day&limit=0", viewer, ``, bad, refusal.CodeInvalidArgument, "limit")
	f("PUT", "/v1/admin/blocked-words", viewer, `{"words":["x"]}`, http.StatusForbidden, refusal.CodePermissionDenied, "")
	f("PUT", "/v1/admin/blocked-words", admin, `{"words":["ok"," "]}`, bad, refusal.CodeInvalidArgument, "words[1]")
	f("PUT", "/v1/admin/blocked-words", admin, `{}`, bad, refusal.CodeInvalidArgument, "words")
	f("PUT", "/v1/admin/blocked-words", admin, `{"words":null}`, bad, refusal.CodeInvalidArgument, "words")
	// Ids are 1..2^63-1 (docs/api.md); an anchor_id is omitted, not 0.
	f("POST", "/v1/rooms/9223372036854775808/open", anchor, ``, bad, refusal.CodeInvalidArgument, "id")
	f("POST", "/v1/rooms/5/gifts", viewer, `{"gift_id":9223372036854775808,"count":1}`, bad, refusal.CodeInvalidArgument, "gift_id")
	f("POST", "/v1/rooms/5/open", admin, `{"anchor_id":0}`, bad, refusal.CodeInvalidArgument, "anchor_id")
	f("POST", "/v1/pk", anchor, `{"room_a":5,"room_b":18446744073709551615}`, bad, refusal.CodeInvalidArgument, "room_b")
	f("POST", "/v1/pk", anchor, `{"room_a":5,"room_b":97}`, http.StatusNotFound, refusal.CodeNotFound, "room_b")
	f("GET", "/v1/pk/5-6-1", viewer, ``, http.StatusNotFound, refusal.CodeNotFound, "")
	f("POST", "/v1/rooms/5/danmaku", viewer, `[1]`, bad, refusal.CodeInvalidArgument, "")
	f("POST", "/v1/rooms/5/danmaku", viewer, `{"text":"`+strings.Repeat("x", 64<<10)+`"}`,
		http.StatusRequestEntityTooLarge, refusal.CodePayloadTooLarge, "")
	f("GET", "/v1/rooms/5", "", ``, http.StatusUnauthorized, refusal.CodeUnauthenticated, "")

	// Accepted ones, then the per-user, per-room rate (1/s, burst 3).
	if r := e.post("/v1/wallet/recharge", viewer, `{"order_id":"o-1","coins":1000}`); r.status != http.StatusOK {
		t.Fatalf("recharge: %d %s", r.status, r.body)
	}
	if r := e.post("/v1/rooms/5/gifts", viewer, `{"gift_id":2,"count":1,"event_id":"g-1"}`); r.status != http.StatusAccepted || !strings.Contains(r.body, `"balance":800`) {
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
		wantError(t, r, http.StatusTooManyRequests, refusal.CodeRateLimited, "text")
		break
	}
	if r := e.post("/v1/rooms/6/danmaku", viewer, `{"text":"hi"}`); r.status != http.StatusAccepted {
		t.Fatalf("the rate is per room: danmaku in room 6: %d %s", r.status, r.body)
	}
}

// TestRoomRoutesReplies walks the success reply of every live-room route
// through the checked client (the OpenAPI document against the real
// handlers and board) and checks the values docs/api.md promises.
func TestRoomRoutesReplies(t *testing.T) {
	t.Parallel()
	e := newRoomsEnv(t)
	anchor, viewer, admin := token(t, 8, ""), token(t, 42, ""), token(t, 1, RoleAdmin)
	room := func(r reply, want rooms.Room) rooms.Room {
		t.Helper()
		var got rooms.Room
		decodeReply(t, r, http.StatusOK, &got)
		want.OpenedAt = got.OpenedAt
		if got != want || got.OpenedAt <= 0 {
			t.Fatalf("room %+v, want %+v", got, want)
		}
		return got
	}
	// The anchor rule: the first opener is the anchor; an admin may name
	// one, or open without one, and then the next opener becomes it.
	room(e.post("/v1/rooms/5/open", anchor, ""), rooms.Room{RoomID: 5, Status: "open", AnchorID: 8, Version: 1})
	room(e.post("/v1/rooms/6/open", admin, `{"anchor_id":9}`), rooms.Room{RoomID: 6, Status: "open", AnchorID: 9, Version: 1})
	room(e.post("/v1/rooms/11/open", admin, ""), rooms.Room{RoomID: 11, Status: "open", Version: 1})
	room(e.post("/v1/rooms/11/open", viewer, `{"anchor_id":77}`), rooms.Room{RoomID: 11, Status: "open", AnchorID: 42, Version: 2})
	room(e.post("/v1/rooms/11/close", viewer, ""), rooms.Room{RoomID: 11, Status: "closed", AnchorID: 42, Version: 3})
	room(e.get("/v1/rooms/6", viewer), rooms.Room{RoomID: 6, Status: "open", AnchorID: 9, Version: 1})

	listed := func(path string, want ...uint64) {
		t.Helper()
		var got struct{ Items []rooms.Room }
		decodeReply(t, e.get(path, viewer), http.StatusOK, &got)
		ids := map[uint64]bool{}
		for _, r := range got.Items {
			ids[r.RoomID] = true
		}
		if len(got.Items) != len(want) || len(ids) != len(want) {
			t.Fatalf("GET %s: %+v, want rooms %v", path, got.Items, want)
		}
		for _, id := range want {
			if !ids[id] {
				t.Fatalf("GET %s: %+v, want rooms %v", path, got.Items, want)
			}
		}
	}
	listed("/v1/rooms", 5, 6, 11)
	listed("/v1/rooms?live=true", 5, 6)
	listed("/v1/rooms?live=&limit=", 5, 6, 11)
	if r := e.get("/v1/rooms?live=1&limit=1", viewer); r.status != http.StatusOK || strings.Count(r.body, `"room_id"`) != 1 {
		t.Fatalf("GET /v1/rooms?live=1&limit=1: %d %s", r.status, r.body)
	}

	var dm struct {
		Accepted bool
		ID       string
		Seq      *int64
	}
	decodeReply(t, e.post("/v1/rooms/5/danmaku", viewer, `{"text":" hi ","event_id":"d-1"}`), http.StatusAccepted, &dm)
	if !dm.Accepted || dm.ID != "d-1" || dm.Seq == nil {
		t.Fatalf("danmaku reply %+v", dm)
	}
	var gift struct {
		Accepted bool
		ID       string
		Balance  int64
	}
	decodeReply(t, e.post("/v1/wallet/recharge", viewer, `{"order_id":"o-1","coins":800}`), http.StatusOK, &struct{}{})
	decodeReply(t, e.post("/v1/rooms/5/gifts", viewer, `{"gift_id":2}`), http.StatusAccepted, &gift)
	if !gift.Accepted || !strings.HasPrefix(gift.ID, "wt") || gift.Balance != 600 {
		t.Fatalf("gift reply %+v", gift)
	}

	// A PK, then a gift as the aggregator hands it over: the ranking and
	// the bar (value 200 = 20 points toward room_a) move.
	var pk rooms.PKFrame
	decodeReply(t, e.post("/v1/pk", anchor, `{"room_a":5,"room_b":6}`), http.StatusCreated, &pk)
	if pk.Type != "pk" || pk.RoomA != 5 || pk.RoomB != 6 || pk.ScoreA != 50 || pk.ScoreB != 50 || pk.Winner != 0 ||
		!strings.HasPrefix(pk.PKID, "5-6-") {
		t.Fatalf("POST /v1/pk: %+v", pk)
	}
	room(e.get("/v1/rooms/5", viewer), rooms.Room{RoomID: 5, Status: "open", AnchorID: 8, PKID: pk.PKID, Version: 1})
	ev := ingest.Event{Type: ingest.TypeGift, UserID: 42, RoomID: 5, AnchorID: 8, GiftID: 2, Value: 200, EventID: "g-1"}
	if err := e.b.ApplyGifts(context.Background(), []aggregate.Gift{{Offset: 1, Appended: time.Now(), Event: ev}}); err != nil {
		t.Fatal(err)
	}
	decodeReply(t, e.get("/v1/pk/"+pk.PKID, viewer), http.StatusOK, &pk)
	if pk.ScoreA != 70 || pk.ScoreB != 30 || pk.Winner != 0 || pk.Version != 2 {
		t.Fatalf("GET /v1/pk: %+v, want 70:30 at version 2", pk)
	}
	var lb struct {
		Items   []rooms.Entry
		Version int64
	}
	decodeReply(t, e.get("/v1/rooms/5/leaderboard?limit=5", viewer), http.StatusOK, &lb)
	if len(lb.Items) != 1 || lb.Items[0] != (rooms.Entry{UserID: 42, Score: 200}) || lb.Version < 1 {
		t.Fatalf("leaderboard %+v", lb)
	}
	decodeReply(t, e.get("/v1/rooms/6/leaderboard", viewer), http.StatusOK, &lb)
	if len(lb.Items) != 0 || lb.Version != 0 {
		t.Fatalf("leaderboard of a room without gifts: %+v", lb)
	}

	// Play leaderboards are read from Redis, where the refresher leaves
	// them ({lbp:<biz>:<window>}:<window start>, DESIGN.md); this week's
	// starts on Monday 00:00 UTC.
	day := time.Now().UTC().Truncate(24 * time.Hour)
	week := day.AddDate(0, 0, -((int(day.Weekday()) + 6) % 7))
	key := e.prefix + "{lbp:audio:week}:" + strconv.FormatInt(week.Unix(), 10)
	if err := e.rdb.ZAdd(context.Background(), key, redis.Z{Score: 3, Member: 7}, redis.Z{Score: 5, Member: 9}).Err(); err != nil {
		t.Fatal(err)
	}
	var plays struct{ Items []rooms.PlayEntry }
	decodeReply(t, e.get("/v1/leaderboards/plays?biz=audio&window=week&limit=", viewer), http.StatusOK, &plays)
	if want := []rooms.PlayEntry{{ItemID: 9, Score: 5}, {ItemID: 7, Score: 3}}; !slices.Equal(plays.Items, want) {
		t.Fatalf("plays %+v, want %+v", plays.Items, want)
	}
	decodeReply(t, e.get("/v1/leaderboards/plays?biz=video&window=hour", viewer), http.StatusOK, &plays)
	if len(plays.Items) != 0 {
		t.Fatalf("plays of an empty window: %+v", plays.Items)
	}

	words := func(r reply, want ...string) {
		t.Helper()
		var got struct{ Words []string }
		decodeReply(t, r, http.StatusOK, &got)
		if !strings.Contains(r.body, `"words":[`) || !slices.Equal(got.Words, want) {
			t.Fatalf("words %s, want %q", r.body, want)
		}
	}
	words(e.get("/v1/admin/blocked-words", admin))
	words(e.do("PUT", "/v1/admin/blocked-words", admin, strings.NewReader(`{"words":["Spam"," eggs "]}`)), "eggs", "spam")
	words(e.get("/v1/admin/blocked-words", admin), "eggs", "spam")
	words(e.do("PUT", "/v1/admin/blocked-words", admin, strings.NewReader(`{"words":[]}`)))
}

// decodeReply checks r's status and decodes its JSON body into v.
func decodeReply(t *testing.T, r reply, status int, v any) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d; body %s", r.status, status, r.body)
	}
	if err := json.Unmarshal([]byte(r.body), v); err != nil {
		t.Fatalf("body %s: %v", r.body, err)
	}
}
