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
// (its own Redis prefix and kfake cluster) and Registry (its own
// PostgreSQL database).
type roomsEnv struct {
	*env
	b      *rooms.Board
	reg    *rooms.Registry
	rdb    *redis.Client
	prefix string
}

// anchorRoom makes uid an approved anchor through the routes, creates
// their room and opens it (unless closed), returning its id as a string.
func (e *roomsEnv) anchorRoom(uid uint64, open bool) string {
	e.t.Helper()
	tok, admin := token(e.t, uid, ""), token(e.t, 1, RoleAdmin)
	if r := e.post("/v1/anchor/apply", tok, `{"reason":"I sing"}`); r.status != http.StatusAccepted {
		e.t.Fatalf("apply: %d %s", r.status, r.body)
	}
	if r := e.post("/v1/admin/anchors/"+strconv.FormatUint(uid, 10)+"/approve", admin, ""); r.status != http.StatusOK {
		e.t.Fatalf("approve: %d %s", r.status, r.body)
	}
	var room rooms.RoomView
	decodeReply(e.t, e.post("/v1/rooms", tok, `{"title":"t","category":"music"}`), http.StatusCreated, &room)
	id := strconv.FormatUint(room.RoomID, 10)
	if open {
		if r := e.post("/v1/rooms/"+id+"/open", tok, ""); r.status != http.StatusOK {
			e.t.Fatalf("open: %d %s", r.status, r.body)
		}
	}
	return id
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
	db := pgtest.DB(t)
	reg, err := rooms.NewRegistry(context.Background(), rooms.RegistryConfig{DB: db, Board: b,
		Streams: rooms.StreamURLs{Play: "http://media/{stream}.flv", Push: "rtmp://media/{stream}", Key: []byte("k")}})
	if err != nil {
		t.Fatal(err)
	}
	MountRooms(e.s, b, reg)
	w, err := wallet.New(wallet.Config{DB: db})
	if err != nil {
		t.Fatal(err)
	}
	if err := MountWallet(e.s, WalletRoutes{Wallet: w, Anchors: b, Effects: b}); err != nil {
		t.Fatal(err)
	}
	return &roomsEnv{env: e, b: b, reg: reg, rdb: rdb, prefix: prefix}
}

// TestRoomRoutesRefuseBadInput walks the refusals of the live-room routes:
// each one's status, code and the field it names.
func TestRoomRoutesRefuseBadInput(t *testing.T) {
	t.Parallel()
	e := newRoomsEnv(t)
	anchor, viewer, admin := token(t, 8, ""), token(t, 42, ""), token(t, 1, RoleAdmin)
	// Rooms {5} (anchor 8) and {6} (anchor 9) are open, {7} (anchor 10) closed.
	ids := strings.NewReplacer("{5}", e.anchorRoom(8, true), "{6}", e.anchorRoom(9, true), "{7}", e.anchorRoom(10, false))
	if r := e.do("PUT", "/v1/admin/blocked-words", admin, strings.NewReader(`{"words":["Spam"]}`)); r.status != http.StatusOK {
		t.Fatalf("set blocked words: %d %s", r.status, r.body)
	}
	f := func(method, path, tok, body string, status int, code, field string) {
		t.Helper()
		wantError(t, e.do(method, ids.Replace(path), tok, strings.NewReader(ids.Replace(body))), status, code, field)
	}
	bad, conflict := http.StatusBadRequest, http.StatusConflict
	f("POST", "/v1/rooms/x/danmaku", viewer, `{"text":"hi"}`, bad, refusal.CodeInvalidArgument, "id")
	f("POST", "/v1/rooms/{5}/danmaku", viewer, `{"text":"  "}`, bad, refusal.CodeInvalidArgument, "text")
	f("POST", "/v1/rooms/{5}/danmaku", viewer, `{"text":"eleven chars"}`, bad, refusal.CodeInvalidArgument, "text")
	f("POST", "/v1/rooms/{5}/danmaku", viewer, `{"text":"buy SPAM"}`, bad, refusal.CodeInvalidArgument, "text")
	f("POST", "/v1/rooms/{5}/danmaku", viewer, `{"text":7}`, bad, refusal.CodeInvalidArgument, "text")
	f("POST", "/v1/rooms/{5}/danmaku", viewer, `{"text":"hi","event_id":"`+strings.Repeat("x", 65)+`"}`, bad, refusal.CodeInvalidArgument, "event_id")
	f("POST", "/v1/rooms/99/danmaku", viewer, `{"text":"hi"}`, http.StatusNotFound, refusal.CodeNotFound, "")
	f("POST", "/v1/rooms/{7}/danmaku", viewer, `{"text":"hi"}`, conflict, refusal.CodeFailedPrecondition, "room_id")
	f("POST", "/v1/rooms/{5}/gifts", viewer, `{"count":1}`, bad, refusal.CodeInvalidArgument, "gift_id")
	f("POST", "/v1/rooms/{5}/gifts", viewer, `{"gift_id":2,"count":0}`, bad, refusal.CodeInvalidArgument, "count")
	f("POST", "/v1/rooms/{5}/gifts", viewer, `{"gift_id":2,"count":"1"}`, bad, refusal.CodeInvalidArgument, "count")
	f("POST", "/v1/rooms/{5}/gifts", viewer, `{"gift_id":2,"count":1001}`, bad, refusal.CodeInvalidArgument, "count")
	f("POST", "/v1/rooms/{5}/gifts", viewer, `{"gift_id":77,"count":1}`, bad, refusal.CodeInvalidArgument, "gift_id")
	f("POST", "/v1/rooms/{5}/gifts", viewer, `{"gift_id":2,"count":1}`, http.StatusPaymentRequired, refusal.CodeInsufficientFunds, "count")
	f("POST", "/v1/rooms/{7}/gifts", viewer, `{"gift_id":2,"count":1}`, conflict, refusal.CodeFailedPrecondition, "room_id")
	f("POST", "/v1/rooms/99/gifts", viewer, `{"gift_id":2,"count":1}`, http.StatusNotFound, refusal.CodeNotFound, "")
	f("POST", "/v1/rooms/{5}/close", viewer, ``, http.StatusForbidden, refusal.CodePermissionDenied, "")
	f("POST", "/v1/rooms/98/close", viewer, ``, http.StatusNotFound, refusal.CodeNotFound, "")
	f("POST", "/v1/pk", anchor, `{"room_a":{5},"room_b":{5}}`, bad, refusal.CodeInvalidArgument, "room_b")
	f("POST", "/v1/pk", anchor, `{"room_b":{5}}`, bad, refusal.CodeInvalidArgument, "room_a")
	f("POST", "/v1/pk", anchor, `{"room_a":{7},"room_b":{5}}`, conflict, refusal.CodeFailedPrecondition, "room_a")
	f("POST", "/v1/pk", viewer, `{"room_a":{5},"room_b":{6}}`, http.StatusForbidden, refusal.CodePermissionDenied, "")
	f("POST", "/v1/pk", token(t, 9, ""), `{"room_a":{5},"room_b":{6}}`, http.StatusForbidden, refusal.CodePermissionDenied, "")
	f("GET", "/v1/rooms/{5}/leaderboard?limit=101", viewer, ``, bad, refusal.CodeInvalidArgument, "limit")
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
	f("POST", "/v1/rooms/{5}/gifts", viewer, `{"gift_id":9223372036854775808,"count":1}`, bad, refusal.CodeInvalidArgument, "gift_id")
	f("POST", "/v1/rooms", viewer, `{"title":"t","category":"music"}`, http.StatusForbidden, refusal.CodePermissionDenied, "")
	f("POST", "/v1/rooms", anchor, `{"title":" ","category":"music"}`, bad, refusal.CodeInvalidArgument, "title")
	f("POST", "/v1/rooms", anchor, `{"title":"t","category":"Music!"}`, bad, refusal.CodeInvalidArgument, "category")
	f("POST", "/v1/rooms", anchor, `{"title":"t","category":"music","cover_url":"ftp://x"}`, bad, refusal.CodeInvalidArgument, "cover_url")
	f("POST", "/v1/rooms/{5}/open", token(t, 9, ""), ``, http.StatusForbidden, refusal.CodePermissionDenied, "")
	f("POST", "/v1/rooms/97/open", anchor, ``, http.StatusNotFound, refusal.CodeNotFound, "")
	f("GET", "/v1/rooms?cursor=nope", viewer, ``, bad, refusal.CodeInvalidArgument, "cursor")
	f("GET", "/v1/rooms?live=true&cursor=YTox", viewer, ``, bad, refusal.CodeInvalidArgument, "cursor")
	f("POST", "/v1/anchor/apply", viewer, `{"reason":""}`, bad, refusal.CodeInvalidArgument, "reason")
	f("GET", "/v1/admin/anchors?status=sleeping", admin, ``, bad, refusal.CodeInvalidArgument, "status")
	f("GET", "/v1/admin/anchors", viewer, ``, http.StatusForbidden, refusal.CodePermissionDenied, "")
	f("POST", "/v1/admin/anchors/4242/approve", admin, ``, http.StatusNotFound, refusal.CodeNotFound, "user_id")
	f("GET", "/v1/pk?live=false", viewer, ``, bad, refusal.CodeInvalidArgument, "live")
	f("GET", "/v1/pk/x", viewer, ``, bad, refusal.CodeInvalidArgument, "id")
	f("POST", "/v1/pk", anchor, `{"room_a":{5},"room_b":18446744073709551615}`, bad, refusal.CodeInvalidArgument, "room_b")
	f("POST", "/v1/pk", anchor, `{"room_a":{5},"room_b":97}`, http.StatusNotFound, refusal.CodeNotFound, "room_b")
	f("GET", "/v1/pk/5-6-1", viewer, ``, http.StatusNotFound, refusal.CodeNotFound, "")
	f("POST", "/v1/rooms/{5}/danmaku", viewer, `[1]`, bad, refusal.CodeInvalidArgument, "")
	f("POST", "/v1/rooms/{5}/danmaku", viewer, `{"text":"`+strings.Repeat("x", 64<<10)+`"}`,
		http.StatusRequestEntityTooLarge, refusal.CodePayloadTooLarge, "")
	f("GET", "/v1/rooms/{5}", "", ``, http.StatusUnauthorized, refusal.CodeUnauthenticated, "")

	// Accepted ones, then the per-user, per-room rate (1/s, burst 3).
	if r := e.post("/v1/wallet/recharge", viewer, `{"order_id":"o-1","coins":1000}`); r.status != http.StatusOK {
		t.Fatalf("recharge: %d %s", r.status, r.body)
	}
	if r := e.post(ids.Replace("/v1/rooms/{5}/gifts"), viewer, `{"gift_id":2,"count":1,"event_id":"g-1"}`); r.status != http.StatusAccepted || !strings.Contains(r.body, `"balance":800`) {
		t.Fatalf("gift: %d %s", r.status, r.body)
	}
	for i := range 3 {
		if r := e.post(ids.Replace("/v1/rooms/{5}/danmaku"), viewer, `{"text":"hi"}`); r.status != http.StatusAccepted || !strings.Contains(r.body, `"seq":`) {
			t.Fatalf("danmaku %d: %d %s", i, r.status, r.body)
		}
	}
	// The burst is spent; on a slow machine a token may have come back
	// meanwhile, so allow a few more before the refusal.
	for i := 0; ; i++ {
		r := e.post(ids.Replace("/v1/rooms/{5}/danmaku"), viewer, `{"text":"hi"}`)
		if r.status == http.StatusAccepted && i < 5 {
			continue
		}
		wantError(t, r, http.StatusTooManyRequests, refusal.CodeRateLimited, "text")
		break
	}
	if r := e.post(ids.Replace("/v1/rooms/{6}/danmaku"), viewer, `{"text":"hi"}`); r.status != http.StatusAccepted {
		t.Fatalf("the rate is per room: danmaku in room 6: %d %s", r.status, r.body)
	}
}

// TestRoomRoutesReplies walks the success reply of every live-room route
// through the checked client (the OpenAPI document against the real
// handlers and board) and checks the values docs/api.md promises.
func TestRoomRoutesReplies(t *testing.T) {
	t.Parallel()
	e := newRoomsEnv(t)
	anchor, anchor9, viewer, admin := token(t, 8, ""), token(t, 9, ""), token(t, 42, ""), token(t, 1, RoleAdmin)
	room := func(r reply, status int, want rooms.Room) rooms.RoomView {
		t.Helper()
		var got rooms.RoomView
		decodeReply(t, r, status, &got)
		want.OpenedAt = got.OpenedAt
		if got.Room != want {
			t.Fatalf("room %+v, want %+v", got.Room, want)
		}
		return got
	}
	// An approved anchor creates their room (again: the same room, 200),
	// then opens and closes it; an admin may too.
	if r := e.post("/v1/anchor/apply", anchor, `{"reason":"I sing"}`); r.status != http.StatusAccepted || !strings.Contains(r.body, `"status":"pending"`) {
		t.Fatalf("apply: %d %s", r.status, r.body)
	}
	var pending struct {
		Items      []rooms.Anchor
		NextCursor string `json:"next_cursor"`
	}
	decodeReply(t, e.get("/v1/admin/anchors?status=pending&limit=10", admin), http.StatusOK, &pending)
	if len(pending.Items) != 1 || pending.Items[0].UserID != 8 || pending.NextCursor != "" {
		t.Fatalf("pending anchors %+v", pending)
	}
	decodeReply(t, e.post("/v1/admin/anchors/8/approve", admin, ""), http.StatusOK, &pending.Items[0])
	in := `{"title":"Mia sings","category":"music","cover_url":"https://img.example/mia.png"}`
	made := room(e.post("/v1/rooms", anchor, in), http.StatusCreated,
		rooms.Room{RoomID: 1, Status: "closed", AnchorID: 8, Title: "Mia sings", Category: "music", CoverURL: "https://img.example/mia.png"})
	if !strings.HasPrefix(made.PushURL, "rtmp://media/room1?expires=") || !strings.HasPrefix(made.PlayURL, "http://media/room1.flv?expires=") {
		t.Fatalf("stream urls %q %q", made.PushURL, made.PlayURL)
	}
	room(e.post("/v1/rooms", anchor, `{"title":"other","category":"talk"}`), http.StatusOK,
		rooms.Room{RoomID: 1, Status: "closed", AnchorID: 8, Title: "Mia sings", Category: "music", CoverURL: "https://img.example/mia.png"})
	five := room(e.post("/v1/rooms/1/open", anchor, ""), http.StatusOK, rooms.Room{RoomID: 1, Status: "open", AnchorID: 8, Title: "Mia sings", Category: "music", CoverURL: "https://img.example/mia.png", Version: 1})
	if five.OpenedAt <= 0 {
		t.Fatalf("opened_at %d", five.OpenedAt)
	}
	six := e.anchorRoom(9, false)
	room(e.post("/v1/rooms/"+six+"/open", admin, ""), http.StatusOK, rooms.Room{RoomID: 2, Status: "open", AnchorID: 9, Title: "t", Category: "music", Version: 1})
	e.anchorRoom(11, true)
	room(e.post("/v1/rooms/3/close", admin, ""), http.StatusOK, rooms.Room{RoomID: 3, Status: "closed", AnchorID: 11, Title: "t", Category: "music", Version: 2})
	if v := room(e.get("/v1/rooms/2", viewer), http.StatusOK, rooms.Room{RoomID: 2, Status: "open", AnchorID: 9, Title: "t", Category: "music", Version: 1}); v.PushURL != "" || v.PlayURL == "" {
		t.Fatalf("a viewer's room 2: %+v", v)
	}

	listed := func(path string, want ...uint64) string {
		t.Helper()
		var got struct {
			Items      []rooms.Room
			NextCursor string `json:"next_cursor"`
		}
		decodeReply(t, e.get(path, viewer), http.StatusOK, &got)
		var ids []uint64
		for _, r := range got.Items {
			ids = append(ids, r.RoomID)
		}
		if !slices.Equal(ids, want) {
			t.Fatalf("GET %s: rooms %v, want %v", path, ids, want)
		}
		return got.NextCursor
	}
	listed("/v1/rooms", 3, 2, 1)
	listed("/v1/rooms?live=true", 2, 1)
	listed("/v1/rooms?live=&limit=", 3, 2, 1)
	next := listed("/v1/rooms?live=1&limit=1", 2)
	if next = listed("/v1/rooms?live=1&limit=1&cursor="+next, 1); next != "" {
		t.Fatalf("the last page's next_cursor %q", next)
	}
	next = listed("/v1/rooms?limit=2", 3, 2)
	listed("/v1/rooms?limit=2&cursor="+next, 1)

	var dm struct {
		Accepted bool
		ID       string
		Seq      *int64
	}
	decodeReply(t, e.post("/v1/rooms/1/danmaku", viewer, `{"text":" hi ","event_id":"d-1"}`), http.StatusAccepted, &dm)
	if !dm.Accepted || dm.ID != "d-1" || dm.Seq == nil {
		t.Fatalf("danmaku reply %+v", dm)
	}
	var gift struct {
		Accepted bool
		ID       string
		Balance  int64
	}
	decodeReply(t, e.post("/v1/wallet/recharge", viewer, `{"order_id":"o-1","coins":800}`), http.StatusOK, &struct{}{})
	decodeReply(t, e.post("/v1/rooms/1/gifts", viewer, `{"gift_id":2}`), http.StatusAccepted, &gift)
	if !gift.Accepted || !strings.HasPrefix(gift.ID, "wt") || gift.Balance != 600 {
		t.Fatalf("gift reply %+v", gift)
	}

	// A PK, then a gift as the aggregator hands it over: the ranking and
	// the bar (value 200 = 20 points toward room_a) move.
	var pk rooms.PKView
	decodeReply(t, e.post("/v1/pk", anchor, `{"room_a":1,"room_b":2}`), http.StatusCreated, &pk)
	if pk.Status != "invited" || pk.RoomA != 1 || pk.RoomB != 2 || !strings.HasPrefix(pk.PKID, "1-2-") {
		t.Fatalf("POST /v1/pk: %+v", pk)
	}
	wantError(t, e.post("/v1/pk/"+pk.PKID+"/accept", anchor, ""), http.StatusForbidden, refusal.CodePermissionDenied, "")
	decodeReply(t, e.post("/v1/pk/"+pk.PKID+"/accept", anchor9, ""), http.StatusOK, &pk)
	if pk.Status != "running" || pk.ScoreA != 50 || pk.ScoreB != 50 || pk.Winner != 0 {
		t.Fatalf("accept: %+v", pk)
	}
	withPK := five.Room
	withPK.PKID = pk.PKID
	room(e.get("/v1/rooms/1", viewer), http.StatusOK, withPK)
	ev := ingest.Event{Type: ingest.TypeGift, UserID: 42, RoomID: 1, AnchorID: 8, GiftID: 2, Value: 200, EventID: "g-1"}
	if err := e.b.ApplyGifts(context.Background(), []aggregate.Gift{{Offset: 1, Appended: time.Now(), Event: ev}}); err != nil {
		t.Fatal(err)
	}
	decodeReply(t, e.get("/v1/pk/"+pk.PKID, viewer), http.StatusOK, &pk)
	if pk.ScoreA != 70 || pk.ScoreB != 30 || pk.Winner != 0 || pk.Version != 2 || pk.Status != "running" {
		t.Fatalf("GET /v1/pk: %+v, want 70:30 at version 2", pk)
	}
	var live struct{ Items []rooms.PKView }
	decodeReply(t, e.get("/v1/pk?live=true", viewer), http.StatusOK, &live)
	if len(live.Items) != 1 || live.Items[0].PKID != pk.PKID {
		t.Fatalf("GET /v1/pk?live=true: %+v", live)
	}
	var lb struct {
		Items   []rooms.Entry
		Version int64
	}
	decodeReply(t, e.get("/v1/rooms/1/leaderboard?limit=5", viewer), http.StatusOK, &lb)
	if len(lb.Items) != 1 || lb.Items[0] != (rooms.Entry{UserID: 42, Score: 200}) || lb.Version < 1 {
		t.Fatalf("leaderboard %+v", lb)
	}
	decodeReply(t, e.get("/v1/rooms/2/leaderboard", viewer), http.StatusOK, &lb)
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
func decodeReply(t testing.TB, r reply, status int, v any) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d; body %s", r.status, status, r.body)
	}
	if err := json.Unmarshal([]byte(r.body), v); err != nil {
		t.Fatalf("body %s: %v", r.body, err)
	}
}
