package web_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/onair/onair/internal/testenv"
)

// TestLiveRoomPage drives the live-room page of a real `onair dev` in two
// headless Chromium sessions: each signs in with the dev code, joins one
// room, and sees the other's danmaku (in the log and flying), a gift effect
// (once, though acked and possibly re-sent), the ranking, the PK bar and the
// head-count of both. The frames are produced to the pushes
// topic as the room owner publishes them (POST /v1/rooms/{id}/danmaku is
// tried through the page too, and checked when the route exists).
func TestLiveRoomPage(t *testing.T) {
	t.Parallel()
	o := testenv.StartOnair(t, "", "--push-online-interval", "300ms")
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: o.RedisAddr})
	defer rdb.Close()
	const room = 5
	if err := rdb.HSet(ctx, "onair:{r5}:room", "status", "open", "anchor_id", 8).Err(); err != nil {
		t.Fatal(err)
	}
	prod, err := kgo.NewClient(kgo.SeedBrokers(o.KafkaAddr), kgo.DefaultProduceTopic("pushes"))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	publish := func(frame string) {
		t.Helper()
		if err := prod.ProduceSync(ctx, &kgo.Record{Key: []byte(fmt.Sprint(room)), Value: []byte(frame)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}

	alice, bob := browser(t), browser(t)
	aliceID, bobID := signInAndJoin(t, alice, o.URL, "13800000001", room), signInAndJoin(t, bob, o.URL, "13800000002", room)
	if aliceID != "13800000001" || bobID != "13800000002" {
		t.Fatalf("signed in as %q and %q, want the phones' user ids", aliceID, bobID)
	}
	for _, b := range []context.Context{alice, bob} {
		waitJS(t, b, `document.getElementById("online").textContent === "2"`, "head-count 2")
	}

	publish(fmt.Sprintf(`{"type":"danmaku","room_id":5,"user_id":%s,"text":"hello from alice","ts":1,"id":"a1"}`, aliceID))
	publish(fmt.Sprintf(`{"type":"danmaku","room_id":5,"user_id":%s,"text":"hi from bob","ts":1,"id":"b1"}`, bobID))
	publish(`{"type":"gift","room_id":5,"id":"gift-1","user_id":13800000002,"gift_id":2,"value":200,"anchor_id":8,"ts":1}`)
	publish(`{"type":"leaderboard","room_id":5,"version":1,"items":[{"user_id":13800000002,"score":200}]}`)
	publish(`{"type":"pk","room_id":5,"version":1,"pk_id":"p1","room_a":5,"room_b":6,"score_a":70,"score_b":30,"winner":0}`)
	for name, b := range map[string]context.Context{"alice": alice, "bob": bob} {
		log := `Array.from(document.querySelectorAll("#chat-log li")).map(li => li.textContent).join("|")`
		waitJS(t, b, log+` === "user `+aliceID+`: hello from alice|user `+bobID+`: hi from bob"`, name+" sees both danmaku")
		waitJS(t, b, `document.getElementById("stage").dataset.flown === "2"`, name+" saw both danmaku fly")
		waitJS(t, b, `document.querySelectorAll('#gift-log li[data-id="gift-1"]').length === 1`, name+" sees the gift once")
		waitJS(t, b, `document.querySelector("#ranking li").textContent === "user 13800000002 · 200"`, name+" sees the ranking")
		waitJS(t, b, `document.getElementById("pk-a-score").textContent === "70" && document.getElementById("pk-a").style.width === "70%"`, name+" sees the PK bar")
	}

	// Sending through the page: POST /v1/rooms/5/danmaku. Until the rooms
	// routes exist, the page shows the refusal instead.
	if err := chromedp.Do(alice, chromedp.SetValue(chromedp.CSS("#danmaku-text"), "typed by alice"), chromedp.Click(chromedp.CSS("#send-danmaku"))); err != nil {
		t.Fatal(err)
	}
	waitJS(t, alice, `document.getElementById("danmaku-text").value === "" || document.getElementById("send-msg").textContent !== ""`, "the send is answered")
	msg, err := chromedp.Run(alice, chromedp.TextContent(chromedp.CSS("#send-msg")))
	if err != nil {
		t.Fatal(err)
	}
	if msg == "" {
		for name, b := range map[string]context.Context{"alice": alice, "bob": bob} {
			waitJS(t, b, `document.getElementById("chat-log").textContent.includes("typed by alice")`, name+" sees the typed danmaku")
		}
	} else {
		t.Logf("POST /v1/rooms/5/danmaku not served yet: %s", msg)
	}
}

// browser starts a headless Chromium with a profile of its own.
func browser(t *testing.T) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath("/usr/bin/chromium"),
		chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.NoFirstRun,
		chromedp.UserDataDir(t.TempDir()),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// signInAndJoin signs in on the page with phone and code 1000, then joins
// room (by id: the room list may be empty); it returns the user id shown.
func signInAndJoin(t *testing.T, b context.Context, base, phone string, room int) string {
	t.Helper()
	err := chromedp.Do(b,
		chromedp.Navigate(base+"/live/"),
		chromedp.WaitVisible(chromedp.CSS("#signin")),
		chromedp.SetValue(chromedp.CSS("#phone"), phone),
		chromedp.Click(chromedp.CSS("#get-code")),
	)
	if err != nil {
		t.Fatal(err)
	}
	waitJS(t, b, `document.getElementById("code").value === "1000"`, "the dev code filled in")
	if err := chromedp.Do(b, chromedp.Click(chromedp.CSS("#login")), chromedp.WaitVisible(chromedp.CSS("#rooms"))); err != nil {
		t.Fatal(err)
	}
	who, err := chromedp.Run(b, chromedp.TextContent(chromedp.CSS("#who")))
	if err != nil {
		t.Fatal(err)
	}
	err = chromedp.Do(b,
		chromedp.SetValue(chromedp.CSS("#room-id"), fmt.Sprint(room)),
		chromedp.Click(chromedp.CSS("#join")),
		chromedp.WaitVisible(chromedp.CSS("#room")),
	)
	if err != nil {
		t.Fatal(err)
	}
	waitJS(t, b, `document.getElementById("status").textContent === ""`, "connected")
	return strings.TrimPrefix(who, "user ")
}

// waitJS polls a JavaScript condition in the page until it is true.
func waitJS(t *testing.T, b context.Context, cond, what string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b, 20*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](cond, chromedp.WithPollingInterval(50*time.Millisecond))); err != nil {
		dump, _ := chromedp.Run(b, chromedp.Evaluate[string](`document.body.innerText`))
		t.Fatalf("waiting for %s (%s): %v; page:\n%s", what, cond, err, dump)
	}
}
