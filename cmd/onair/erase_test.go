package main

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/onair/onair/internal/chdb"
	"github.com/onair/onair/internal/testenv"
	"github.com/onair/onair/lifecycle"
)

// TestEraseUser runs `onair dev`, gives user 42 a history, a resume point,
// a danmaku, a gift in a room ranking and rows in every ClickHouse table of
// users, erases 42 as an admin, and then finds nothing of 42: not through
// the API (history, continue, progress, the ranking), not in the room's
// recent danmaku, not in ClickHouse once the mutations are done. User 43
// keeps everything. A repeat answers the same; an event of 42 dated before
// the erasure does not bring anything back; the audit row is there.
func TestEraseUser(t *testing.T) {
	t.Parallel()
	o := testenv.StartOnair(t, "", "--progress-flush", "100ms")
	admin, anchor := o.Token(t, 1, "admin"), o.Token(t, 8, "")
	tok := map[uint64]string{42: o.Token(t, 42, ""), 43: o.Token(t, 43, "")}
	roomID := anchorRoom(t, o.URL, anchor, admin, 8)
	room := o.URL + "/v1/rooms/" + strconv.FormatUint(roomID, 10)
	before := time.Now().UnixMilli()
	for _, u := range []uint64{42, 43} {
		postOK(t, o.URL+"/v1/events", tok[u], map[string]any{"events": []map[string]any{
			{"type": "progress", "biz": "audio", "item_id": 100 + u, "position_ms": 61000, "duration_ms": 1800000, "ts": before, "device": "ios-7f3a"},
			{"type": "play", "biz": "audio", "item_id": 100 + u, "listened_ms": 30000, "ts": before},
		}})
		post(t, o.URL+"/v1/wallet/recharge", tok[u], map[string]any{"order_id": fmt.Sprint("o", u), "coins": 200}, http.StatusOK)
		postOK(t, room+"/gifts", tok[u], map[string]any{"gift_id": 2, "count": 1})
		postOK(t, room+"/danmaku", tok[u], map[string]any{"text": fmt.Sprint("hello from ", u)})
	}
	ch, err := chdb.Open(chdb.Config{Addr: o.ClickHouseAddr})
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	rdb := redis.NewClient(&redis.Options{Addr: o.RedisAddr})
	defer rdb.Close()
	ctx := context.Background()
	rowsOf := func(user uint64) map[string]uint64 {
		out := map[string]uint64{}
		for _, tb := range lifecycle.UserTables {
			q := fmt.Sprintf("SELECT count() FROM %s.%s WHERE user_id = %d", o.Database, tb, user)
			if tb == "history_ops" {
				q += " AND op != 'clear'" // the erasure's own tombstone stays
			}
			var n uint64
			if err := ch.QueryRow(ctx, q).Scan(&n); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
			out[tb] = n
		}
		return out
	}
	allThere := func(user uint64) bool {
		for tb, n := range rowsOf(user) {
			if n == 0 && tb != "history_ops" && tb != "user_affinity" { // no catalog: no affinity; no ops yet
				return false
			}
		}
		return true
	}
	testenv.Wait(t, 30*time.Second, func() bool { return allThere(42) && allThere(43) }, "rows of users 42 and 43 in every table: %v %v", rowsOf(42), rowsOf(43))
	testenv.Wait(t, 30*time.Second, func() bool {
		lb := getOK(t, room+"/leaderboard", tok[43])
		return strings.Contains(lb, `"user_id":42`) && strings.Contains(lb, `"user_id":43`)
	}, "both givers in the ranking")
	if got := getOK(t, o.URL+"/v1/history", tok[42]); !strings.Contains(got, `"item_id":142`) {
		t.Fatalf("history of 42 before the erasure: %s", got)
	}

	// Only an admin may erase.
	if code, body := do(t, http.MethodPost, o.URL+"/v1/admin/users/42/erase", tok[43], nil); code != http.StatusForbidden {
		t.Fatalf("erase by a user: %d %s, want 403", code, body)
	}
	code, first := do(t, http.MethodPost, o.URL+"/v1/admin/users/42/erase", admin, nil)
	if code != http.StatusAccepted || !strings.Contains(first, `"user_id":42`) {
		t.Fatalf("erase: %d %s, want 202", code, first)
	}
	if code, again := do(t, http.MethodPost, o.URL+"/v1/admin/users/42/erase", admin, nil); code != http.StatusAccepted || again != first {
		t.Fatalf("erase again: %d %s, want 202 %s", code, again, first)
	}

	// Nothing of 42 through the API, at once.
	for _, path := range []string{"/v1/history", "/v1/continue", "/v1/progress?items=audio:142"} {
		if got := getOK(t, o.URL+path, tok[42]); strings.Contains(got, "142") {
			t.Fatalf("GET %s after the erasure: %s", path, got)
		}
	}
	lb := getOK(t, room+"/leaderboard", tok[43])
	if strings.Contains(lb, `"user_id":42`) || !strings.Contains(lb, `"user_id":43`) {
		t.Fatalf("ranking after the erasure: %s", lb)
	}
	recent, err := rdb.LRange(ctx, fmt.Sprintf("onair:{r%d}:recent", roomID), 0, -1).Result()
	if err != nil || len(recent) == 0 {
		t.Fatalf("recent danmaku of room %d: %v %v", roomID, recent, err)
	}
	for _, f := range recent {
		if strings.Contains(f, `"user_id":42`) {
			t.Fatalf("a danmaku of 42 is still in the room's recent list: %s", f)
		}
	}
	// Nothing in ClickHouse once the mutations are done; 43 untouched.
	testenv.Wait(t, 60*time.Second, func() bool {
		for _, n := range rowsOf(42) {
			if n != 0 {
				return false
			}
		}
		return true
	}, "no rows of 42 left: %v", rowsOf(42))
	if !allThere(43) {
		t.Fatalf("rows of 43 after erasing 42: %v", rowsOf(43))
	}
	var audits uint64
	if err := ch.QueryRow(ctx, fmt.Sprintf("SELECT count() FROM %s.erasures WHERE user_id = 42 AND requested_by = 1", o.Database)).Scan(&audits); err != nil || audits != 2 {
		t.Fatalf("audit rows of the two erasures: %d %v", audits, err)
	}

	// A late event dated before the erasure brings nothing back; a new one
	// starts a new history.
	postOK(t, o.URL+"/v1/events", tok[42], map[string]any{"events": []map[string]any{
		{"type": "progress", "biz": "audio", "item_id": 142, "position_ms": 9000, "duration_ms": 1800000, "ts": before},
		{"type": "progress", "biz": "audio", "item_id": 500, "position_ms": 1000, "duration_ms": 1800000, "ts": time.Now().UnixMilli() + 1000},
	}})
	testenv.Wait(t, 30*time.Second, func() bool {
		return strings.Contains(getOK(t, o.URL+"/v1/history", tok[42]), `"item_id":500`)
	}, "the new item in the history")
	if got := getOK(t, o.URL+"/v1/history", tok[42]); strings.Contains(got, `"item_id":142`) {
		t.Fatalf("an event dated before the erasure came back: %s", got)
	}
}
