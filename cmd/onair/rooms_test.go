package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/onair/onair/internal/testenv"
)

// post posts body and wants status.
func post(t testing.TB, url, token string, body any, status int) string {
	t.Helper()
	code, reply := do(t, http.MethodPost, url, token, body)
	if code != status {
		t.Fatalf("POST %s: %d %s, want %d", url, code, reply, status)
	}
	return reply
}

// anchorRoom makes uid an approved anchor through the routes (applying
// with their token, approved with admin's), creates their room and opens
// it; it returns the room id.
func anchorRoom(t testing.TB, url, tok, admin string, uid uint64) uint64 {
	t.Helper()
	if code, body := do(t, http.MethodPost, url+"/v1/anchor/apply", tok, map[string]any{"reason": "I sing"}); code != http.StatusAccepted {
		t.Fatalf("apply: %d %s", code, body)
	}
	post(t, url+"/v1/admin/anchors/"+strconv.FormatUint(uid, 10)+"/approve", admin, nil, http.StatusOK)
	code, body := do(t, http.MethodPost, url+"/v1/rooms", tok, map[string]any{"title": "room", "category": "music"})
	var room struct {
		RoomID uint64 `json:"room_id"`
	}
	if err := json.Unmarshal([]byte(body), &room); code != http.StatusCreated || err != nil {
		t.Fatalf("create room: %d %s", code, body)
	}
	post(t, url+"/v1/rooms/"+strconv.FormatUint(room.RoomID, 10)+"/open", tok, nil, http.StatusOK)
	return room.RoomID
}

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
	id := anchorRoom(t, s.url, anchor, s.token(t, 1, "admin"), 8)
	path := s.url + "/v1/rooms/" + strconv.FormatUint(id, 10)
	if got := getOK(t, s.url+"/v1/rooms?live=true", viewer); !strings.Contains(got, fmt.Sprintf(`"room_id":%d,"status":"open","anchor_id":8`, id)) {
		t.Fatalf("live rooms: %s", got)
	}
	if code, body := do(t, http.MethodPost, s.url+"/v1/wallet/recharge", viewer, map[string]any{"order_id": "o1", "coins": 1000}); code != http.StatusOK {
		t.Fatalf("recharge: %d %s", code, body)
	}
	postOK(t, path+"/gifts", viewer, map[string]any{"gift_id": 2, "count": 1})                   // a rocket: 200
	postOK(t, path+"/gifts", viewer, map[string]any{"gift_id": 3, "count": 5, "event_id": "g1"}) // 5 hearts: 50
	postOK(t, path+"/gifts", viewer, map[string]any{"gift_id": 3, "count": 5, "event_id": "g1"}) // a retry
	want := `{"items":[{"user_id":42,"nickname":"user 42","score":250}]`                         // user 42 has no account
	testenv.Wait(t, 30*time.Second, func() bool {
		return strings.HasPrefix(getOK(t, path+"/leaderboard", viewer), want)
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

// TestDevRedisLossKeepsRooms: `onair dev` with open rooms (one in a PK)
// and a closed one loses Redis (FLUSHALL): within 2 s every open room
// answers as open with its anchor again (the registry rebuilds the hot
// copy from PostgreSQL), the closed one stays closed, gifts are taken
// again, and the PK is still running.
func TestDevRedisLossKeepsRooms(t *testing.T) {
	t.Parallel()
	o := testenv.StartOnair(t, "")
	admin, viewer := o.Token(t, 1, "admin"), o.Token(t, 42, "")
	const n = 6
	ids := make([]uint64, n)
	var wg sync.WaitGroup
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			uid := uint64(8000 + i)
			ids[i] = anchorRoom(t, o.URL, o.Token(t, uid, ""), admin, uid)
		}()
	}
	wg.Wait()
	closed := ids[n-1]
	post(t, o.URL+fmt.Sprintf("/v1/rooms/%d/close", closed), o.Token(t, 8000+n-1, ""), nil, http.StatusOK)
	var pk struct {
		PKID string `json:"pk_id"`
	}
	reply := post(t, o.URL+"/v1/pk", o.Token(t, 8000, ""), map[string]any{"room_a": ids[0], "room_b": ids[1]}, http.StatusCreated)
	if err := json.Unmarshal([]byte(reply), &pk); err != nil {
		t.Fatal(err)
	}
	post(t, o.URL+"/v1/pk/"+pk.PKID+"/accept", o.Token(t, 8001, ""), nil, http.StatusOK)

	// coins live in PostgreSQL: the loss does not touch them
	post(t, o.URL+"/v1/wallet/recharge", viewer, map[string]any{"order_id": "o1", "coins": 1000}, http.StatusOK)
	rdb := redis.NewClient(&redis.Options{Addr: o.RedisAddr})
	defer rdb.Close()
	if err := rdb.FlushAll(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	lost := time.Now()
	// every open room answers open with its anchor, from the hot copy (the
	// gift route reads only Redis: 202 means Redis holds the room again)
	pending := map[int]bool{}
	for i := range n - 1 {
		pending[i] = true
	}
	testenv.Wait(t, 2*time.Second, func() bool {
		for i := range pending {
			code, _ := do(t, http.MethodPost, o.URL+fmt.Sprintf("/v1/rooms/%d/gifts", ids[i]), viewer,
				map[string]any{"gift_id": 1, "count": 1}) // a rose: 1 coin
			if code == http.StatusAccepted {
				delete(pending, i)
			}
		}
		return len(pending) == 0
	}, "every open room to take gifts again (still refused: %v)", pending)
	took := time.Since(lost)
	for i, id := range ids {
		body := getOK(t, o.URL+fmt.Sprintf("/v1/rooms/%d", id), viewer)
		want := fmt.Sprintf(`"status":"open","anchor_id":%d`, 8000+i)
		if id == closed {
			want = fmt.Sprintf(`"status":"closed","anchor_id":%d`, 8000+i)
		}
		if !strings.Contains(body, want) {
			t.Fatalf("room %d after the loss: %s, want %s", id, body, want)
		}
	}
	if got := getOK(t, o.URL+"/v1/pk/"+pk.PKID, viewer); !strings.Contains(got, `"status":"running"`) {
		t.Fatalf("the PK after the loss: %s", got)
	}
	if got := getOK(t, o.URL+"/v1/pk?live=true", viewer); !strings.Contains(got, pk.PKID) {
		t.Fatalf("live PKs after the loss: %s", got)
	}
	t.Logf("%d open rooms answering open with their anchor %s after FLUSHALL", n-1, took.Round(time.Millisecond))
}
