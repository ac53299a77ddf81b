package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/onair/onair/internal/chdb"
	"github.com/onair/onair/internal/testenv"
)

// TestDevRedisLossKeepsHistory is issue 19's scenario on `onair dev`:
// items 1-3 reach onair.progress, items 4 and 5 and a move of item 1 are in
// Redis only, then Redis loses everything (FLUSHALL) and the user reads at
// once. Within the progress flush interval the history is whole again and
// nothing is older than before; a retry of an event accepted before the
// loss is counted once; first_today is not granted a second time that day.
func TestDevRedisLossKeepsHistory(t *testing.T) {
	t.Parallel()
	const progressFlush = 3 * time.Second
	o := testenv.StartOnair(t, "", "--progress-flush", progressFlush.String())
	tok := o.Token(t, 42, "")
	ctx := context.Background()
	ch, err := chdb.Open(chdb.Config{Addr: o.ClickHouseAddr})
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	rdb := redis.NewClient(&redis.Options{Addr: o.RedisAddr})
	defer rdb.Close()

	now := time.Now().UnixMilli()
	post := func(item, pos uint64, ts int64, id string) string {
		t.Helper()
		return postOK(t, o.URL+"/v1/progress", tok, apiEvent{Biz: "audio", ItemID: item, PositionMs: pos,
			DurationMs: 600_000, TS: ts, Device: "ios-1", EventID: id})
	}
	firstToday := func(reply string) bool {
		t.Helper()
		var r struct {
			FirstToday bool `json:"first_today"`
		}
		if err := json.Unmarshal([]byte(reply), &r); err != nil {
			t.Fatalf("reply %q: %v", reply, err)
		}
		return r.FirstToday
	}
	if !firstToday(post(1, 1000, now-100, "e1")) {
		// a Touch that failed under load answers false; what matters
		// below is that no later report gets true
		t.Log("the first report of the day is not first_today")
	}
	post(2, 2000, now-99, "e2")
	post(3, 3000, now-98, "e3")
	testenv.Wait(t, 30*time.Second, func() bool {
		var n uint64
		err := ch.QueryRow(ctx, "SELECT count() FROM "+o.Database+".progress FINAL WHERE user_id = 42").Scan(&n)
		return err == nil && n == 3
	}, "items 1-3 in onair.progress")
	post(4, 4000, now-50, "e4")
	post(5, 5000, now-49, "e5")
	post(1, 99_000, now-48, "e1b")
	want := map[uint64]uint64{1: 99_000, 2: 2000, 3: 3000, 4: 4000, 5: 5000}
	readHistory := func() string {
		var r struct {
			Items []struct {
				ItemID     uint64 `json:"item_id"`
				PositionMs uint64 `json:"position_ms"`
			} `json:"items"`
		}
		body := getOK(t, o.URL+"/v1/history?limit=100", tok)
		if err := json.Unmarshal([]byte(body), &r); err != nil {
			t.Fatalf("history %q: %v", body, err)
		}
		got := map[uint64]uint64{}
		for _, it := range r.Items {
			got[it.ItemID] = it.PositionMs
		}
		for item, pos := range want {
			if got[item] != pos {
				return fmt.Sprintf("item %d at %d ms, want %d (history %s)", item, got[item], pos, strings.TrimSpace(body))
			}
		}
		return ""
	}
	testenv.Wait(t, 20*time.Second, func() bool { return readHistory() == "" }, "every report in the history")

	if err := rdb.FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	readHistory() // the read right after the loss re-warms from a lagging ClickHouse
	var last string
	deadline := time.Now().Add(progressFlush)
	for last = readHistory(); last != "" && time.Now().Before(deadline); last = readHistory() {
		time.Sleep(20 * time.Millisecond) // polling interval, not synchronisation
	}
	if last != "" {
		t.Fatalf("%s after the loss: %s", progressFlush, last)
	}

	// the app retries e4 (it never saw the 202); then a new report
	if firstToday(post(4, 4000, now-50, "e4")) {
		t.Fatal("first_today granted again after the loss")
	}
	if firstToday(post(6, 6000, now-10, "e6")) {
		t.Fatal("first_today granted again after the loss")
	}
	testenv.Wait(t, 20*time.Second, func() bool {
		var n uint64
		err := ch.QueryRow(ctx, "SELECT count() FROM "+o.Database+".events WHERE event_id = 'e6'").Scan(&n)
		return err == nil && n == 1
	}, "e6 in onair.events")
	var n uint64
	if err := ch.QueryRow(ctx, "SELECT count() FROM "+o.Database+".events WHERE event_id = 'e4'").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("e4, retried after the loss, is in onair.events %d times, want 1", n)
	}
	if got := readHistory(); got != "" {
		t.Fatalf("at the end: %s", got)
	}
}
