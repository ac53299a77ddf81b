package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/redis/go-redis/v9"

	"github.com/onair/onair/internal/chdb"
	"github.com/onair/onair/internal/testenv"
)

// lossUser is user 42 of a running `onair dev` as the loss tests see it:
// posts audio progress, reads the history, counts event ids in ClickHouse.
type lossUser struct {
	t    *testing.T
	o    *testenv.Onair
	tok  string
	ch   driver.Conn
	want map[uint64]uint64 // item → position the history must show
	now  int64
}

func newLossUser(t *testing.T, o *testenv.Onair, now int64) *lossUser {
	t.Helper()
	ch, err := chdb.Open(chdb.Config{Addr: o.ClickHouseAddr})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ch.Close() })
	return &lossUser{t: t, o: o, tok: o.Token(t, 42, ""), ch: ch, want: map[uint64]uint64{}, now: now}
}

// post reports item at pos, ts = now+dt, and returns the reply's first_today.
func (u *lossUser) post(item, pos uint64, dt int64, id string) bool {
	u.t.Helper()
	reply := postOK(u.t, u.o.URL+"/v1/progress", u.tok, apiEvent{Biz: "audio", ItemID: item, PositionMs: pos,
		DurationMs: 600_000, TS: u.now + dt, Device: "ios-1", EventID: id})
	var r struct {
		FirstToday bool `json:"first_today"`
	}
	if err := json.Unmarshal([]byte(reply), &r); err != nil {
		u.t.Fatalf("reply %q: %v", reply, err)
	}
	u.want[item] = pos
	return r.FirstToday
}

// mismatch reads the history and describes the first item that is not as
// posted, or returns "".
func (u *lossUser) mismatch() string {
	var r struct {
		Items []struct {
			ItemID     uint64 `json:"item_id"`
			PositionMs uint64 `json:"position_ms"`
		} `json:"items"`
	}
	body := getOK(u.t, u.o.URL+"/v1/history?limit=100", u.tok)
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		u.t.Fatalf("history %q: %v", body, err)
	}
	got := map[uint64]uint64{}
	for _, it := range r.Items {
		got[it.ItemID] = it.PositionMs
	}
	for item, pos := range u.want {
		if got[item] != pos {
			return fmt.Sprintf("item %d at %d ms, want %d (history %s)", item, got[item], pos, strings.TrimSpace(body))
		}
	}
	return ""
}

// waitHistory polls the history until it is as posted, failing after d,
// and logs how long that took.
func (u *lossUser) waitHistory(d time.Duration, what string) {
	u.t.Helper()
	start := time.Now()
	deadline := start.Add(d)
	last := u.mismatch()
	for ; last != "" && time.Now().Before(deadline); last = u.mismatch() {
		time.Sleep(20 * time.Millisecond) // polling interval, not synchronisation
	}
	if last != "" {
		u.t.Fatalf("%s, after %s: %s", what, d, last)
	}
	u.t.Logf("%s: history whole within %s", what, time.Since(start).Round(time.Millisecond))
}

// count returns how many rows of the table match where.
func (u *lossUser) count(table, where string) uint64 {
	var n uint64
	if err := u.ch.QueryRow(context.Background(), "SELECT count() FROM "+u.o.Database+"."+table+" WHERE "+where).Scan(&n); err != nil {
		return 0
	}
	return n
}

// before posts items 1-3, waits until they are in onair.progress, then
// posts items 4 and 5 and moves item 1, and waits until the history shows
// them and onair.events holds them: the state before the loss.
func (u *lossUser) before() {
	u.t.Helper()
	if !u.post(1, 1000, -100, "e1") {
		// a Touch that failed under load answers false; what matters
		// is that no later report gets true
		u.t.Log("the first report of the day is not first_today")
	}
	u.post(2, 2000, -99, "e2")
	u.post(3, 3000, -98, "e3")
	testenv.Wait(u.t, 30*time.Second, func() bool { return u.count("progress FINAL", "user_id = 42") == 3 }, "items 1-3 in onair.progress")
	u.post(4, 4000, -50, "e4")
	u.post(5, 5000, -49, "e5")
	u.post(1, 99_000, -48, "e1b")
	u.waitHistory(20*time.Second, "every report in the history")
	// e4's claim is made before it lands: once it is in onair.events, only
	// Redis knows it (a retry's dedupe needs the claim)
	testenv.Wait(u.t, 30*time.Second, func() bool { return u.count("events", "event_id = 'e1b'") == 1 }, "e1b in onair.events")
}

// after retries e4 (the app never saw its 202), posts a new report, and
// checks that neither got first_today and that e4 is in onair.events once.
func (u *lossUser) after() {
	u.t.Helper()
	if u.post(4, 4000, -50, "e4") || u.post(6, 6000, -10, "e6") {
		u.t.Fatal("first_today granted again after the loss")
	}
	testenv.Wait(u.t, 30*time.Second, func() bool { return u.count("events", "event_id = 'e6'") == 1 }, "e6 in onair.events")
	if n := u.count("events", "event_id = 'e4'"); n != 1 {
		u.t.Fatalf("e4, retried after the loss, is in onair.events %d times, want 1", n)
	}
	if got := u.mismatch(); got != "" {
		u.t.Fatalf("at the end: %s", got)
	}
}

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
	u := newLossUser(t, o, time.Now().UnixMilli())
	u.before()
	rdb := redis.NewClient(&redis.Options{Addr: o.RedisAddr})
	defer rdb.Close()
	if err := rdb.FlushAll(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	lost := time.Now()
	first := u.mismatch() // the read right after the loss re-warms from a lagging ClickHouse
	u.waitHistory(progressFlush, "after the loss")
	t.Logf("history whole %s after the loss; the read right after it: %q", time.Since(lost).Round(time.Millisecond), first)
	u.after()
}

// TestDevRestartWithWipedRedisKeepsHistory: `onair dev` is killed, its
// Redis data directory wiped, and it starts again on the same data
// directory (Kafka and ClickHouse kept): the history is whole once the
// aggregator has resumed, a retry is counted once, and first_today is not
// granted again that day.
func TestDevRestartWithWipedRedisKeepsHistory(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	args := []string{"--progress-flush", "3s", "--auth-secret", "redisloss-secret"}
	o := testenv.StartOnair(t, dir, args...)
	u := newLossUser(t, o, time.Now().UnixMilli())
	u.before()
	o.Kill(t)
	if err := os.RemoveAll(filepath.Join(dir, "redis")); err != nil {
		t.Fatal(err)
	}
	o2 := testenv.StartOnair(t, dir, args...)
	u2 := newLossUser(t, o2, u.now)
	u2.want = u.want
	u2.mismatch()
	u2.waitHistory(20*time.Second, "after the restart")
	u2.after()
}
