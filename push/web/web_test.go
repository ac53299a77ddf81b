package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/gorilla/websocket"

	"github.com/onair/onair/internal/apitest"
	"github.com/onair/onair/internal/browsertest"
	"github.com/onair/onair/internal/testenv"
)

// TestLiveRoomPage drives the live-room page of a real `onair dev` in two
// headless Chromium sessions, end to end through the real routes (nothing
// is injected into the pushes topic): each signs in with the dev code and
// joins a room opened by POST /v1/rooms/5/open; each types a danmaku on the
// page (POST /v1/rooms/5/danmaku) and both see both, in the log and
// flying; bob's gift button (POST /v1/rooms/5/gifts) shows the gift once
// in both gift logs, bob at the top of the ranking and the PK bar
// (POST /v1/pk) moved by the gift; both see the head-count of two. A third,
// plain WebSocket viewer checks the wire: the gift frame carries the event
// id the 202 returned, and a leaderboard frame arrives with bob's score.
func TestLiveRoomPage(t *testing.T) {
	t.Parallel()
	o := testenv.StartOnair(t, "", "--push-online-interval", "300ms")
	client := apitest.New(t).Client(nil) // every exchange against the OpenAPI document
	post := func(path, token, body string, want int) string {
		t.Helper()
		req, _ := http.NewRequest("POST", o.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != want {
			t.Fatalf("POST %s: %d %s, want %d", path, resp.StatusCode, b, want)
		}
		return string(b)
	}
	// Anchors 8 and 9 apply, are approved and open their rooms (5 and 6:
	// the "rooms" sequence of this fresh database starts at 5 after the
	// four rooms of other anchors created first); 8 invites 9 to a PK.
	admin := o.Token(t, 1, "admin")
	for uid := uint64(2); uid <= 9; uid++ {
		if uid > 5 && uid < 8 {
			continue
		}
		tok := o.Token(t, uid, "")
		post("/v1/anchor/apply", tok, `{"reason":"demo"}`, 202)
		post("/v1/admin/anchors/"+strconv.FormatUint(uid, 10)+"/approve", admin, "", 200)
		post("/v1/rooms", tok, `{"title":"demo","category":"music"}`, 201)
	}
	post("/v1/rooms/5/open", o.Token(t, 8, ""), "", 200)
	post("/v1/rooms/6/open", o.Token(t, 9, ""), "", 200)
	var pk struct {
		PKID string `json:"pk_id"`
	}
	if err := json.Unmarshal([]byte(post("/v1/pk", o.Token(t, 8, ""), `{"room_a":5,"room_b":6}`, 201)), &pk); err != nil {
		t.Fatal(err)
	}
	post("/v1/pk/"+pk.PKID+"/accept", o.Token(t, 9, ""), "", 200)
	wire := dialRoom(t, o, 5)

	alice, bob := browsertest.Start(t), browsertest.Start(t)
	aliceID, aliceNick := signInAndJoin(t, alice, o.URL, "13800000001", "Alice", 5)
	bobID, bobNick := signInAndJoin(t, bob, o.URL, "13800000002", "", 5)
	if aliceID == bobID || strings.Contains(aliceID+bobID, "1380000000") || aliceNick != "Alice" || !strings.HasPrefix(bobNick, "listener-") {
		t.Fatalf("signed in as %q (%q) and %q (%q), want server ids (not the phones) and nicknames", aliceID, aliceNick, bobID, bobNick)
	}
	for _, b := range []context.Context{alice, bob} {
		browsertest.WaitJS(t, b, `document.getElementById("online").textContent === "3"`, "head-count 3 (two pages and the wire viewer)")
		browsertest.WaitJS(t, b, `document.getElementById("pk-a-score").textContent === "50"`, "the PK bar at 50:50")
	}

	send(t, alice, "hello from alice")
	browsertest.WaitJS(t, alice, `document.getElementById("chat-log").textContent.includes("hello from alice")`, "alice sees her danmaku")
	send(t, bob, "hi from bob")
	// gifts are paid: bob recharges (the dev provider pays), then sends a rocket (200 coins)
	if err := chromedp.Do(bob, chromedp.Click(chromedp.CSS("#recharge"))); err != nil {
		t.Fatal(err)
	}
	browsertest.WaitJS(t, bob, `document.getElementById("balance").textContent === "1000"`, "bob's balance after the recharge")
	if err := chromedp.Do(bob, chromedp.Click(chromedp.CSS("#send-gift"))); err != nil { // gift 2, a rocket: 200
		t.Fatal(err)
	}
	browsertest.WaitJS(t, bob, `document.getElementById("balance").textContent === "800"`, "bob's balance after the gift")
	for name, b := range map[string]context.Context{"alice": alice, "bob": bob} {
		log := `Array.from(document.querySelectorAll("#chat-log li")).map(li => li.textContent).join("|")`
		browsertest.WaitJS(t, b, log+` === "Alice: hello from alice|`+bobNick+`: hi from bob"`, name+" sees both danmaku by nickname")
		browsertest.WaitJS(t, b, `document.getElementById("stage").dataset.flown === "2"`, name+" saw both danmaku fly")
		browsertest.WaitJS(t, b, `document.querySelectorAll("#gift-log li").length === 1`, name+" sees the gift once")
		browsertest.WaitJS(t, b, `document.querySelector("#ranking li")?.textContent === "`+bobNick+` · 200"`, name+" sees the ranking by nickname")
		browsertest.WaitJS(t, b, `!document.body.innerText.includes("13800000001") && !document.body.innerText.includes("13800000002")`, name+"'s page shows no phone")
		browsertest.WaitJS(t, b, `document.getElementById("pk-a-score").textContent === "70" && document.getElementById("pk-a").style.width === "70%"`, name+" sees the PK bar move")
		if msg, err := chromedp.Run(b, chromedp.TextContent(chromedp.CSS("#send-msg"))); err != nil || msg != "" {
			t.Fatalf("%s's page shows a refusal %q (%v)", name, msg, err)
		}
	}
	// alice has no coins: her gift is refused, the page says why, nothing moves
	if err := chromedp.Do(alice, chromedp.Click(chromedp.CSS("#send-gift"))); err != nil {
		t.Fatal(err)
	}
	browsertest.WaitJS(t, alice, `document.getElementById("send-msg").textContent.includes("not enough coins")`, "alice is told she has not enough coins")
	// The wire: a gift's frame carries the id its 202 returned.
	var accepted struct{ ID string }
	post("/v1/wallet/recharge", o.Token(t, 77, ""), `{"order_id":"w1","coins":10}`, 200)
	if err := json.Unmarshal([]byte(post("/v1/rooms/5/gifts", o.Token(t, 77, ""), `{"gift_id":3,"count":1}`, 202)), &accepted); err != nil || accepted.ID == "" {
		t.Fatalf("gift 202 without an id: %+v %v", accepted, err)
	}
	wire.wantGift(t, accepted.ID, "77", "10", bobID, bobNick)
	wire.mu.Lock()
	all, _ := json.Marshal(wire.items)
	wire.mu.Unlock()
	if bytes.Contains(all, []byte("13800000001")) || bytes.Contains(all, []byte("13800000002")) || !bytes.Contains(all, []byte(`"nickname":"Alice"`)) {
		t.Fatalf("the frames name a phone, or not Alice by nickname: %s", all)
	}
	if log := o.StderrTail(); strings.Contains(log, "13800000001") || strings.Contains(log, "13800000002") {
		t.Fatalf("the log names a phone:\n%s", log)
	}
}

// send types text into the page's danmaku box and sends it; the page
// clears the box on the 202.
func send(t *testing.T, b context.Context, text string) {
	t.Helper()
	if err := chromedp.Do(b, chromedp.SetValue(chromedp.CSS("#danmaku-text"), text), chromedp.Click(chromedp.CSS("#send-danmaku"))); err != nil {
		t.Fatal(err)
	}
	browsertest.WaitJS(t, b, `document.getElementById("danmaku-text").value === ""`, "the danmaku accepted (202)")
}

// signInAndJoin signs in on the page with phone and the dev code the
// reply shows, sets the nickname when nick is not "", then joins room (by
// id: the room list may be empty); it returns the user id and the nickname
// shown.
func signInAndJoin(t *testing.T, b context.Context, base, phone, nick string, room int) (string, string) {
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
	browsertest.WaitJS(t, b, `/^[0-9]{6}$/.test(document.getElementById("code").value)`, "the dev code filled in")
	if err := chromedp.Do(b, chromedp.Click(chromedp.CSS("#login")), chromedp.WaitVisible(chromedp.CSS("#rooms"))); err != nil {
		t.Fatal(err)
	}
	browsertest.WaitJS(t, b, `document.getElementById("who").textContent.startsWith("listener-")`, "the new user's nickname shown")
	if nick != "" {
		if err := chromedp.Do(b, chromedp.SetValue(chromedp.CSS("#nickname"), nick), chromedp.Click(chromedp.CSS("#save-nickname"))); err != nil {
			t.Fatal(err)
		}
		browsertest.WaitJS(t, b, `document.getElementById("who").textContent === `+strconvQuote(nick), "the nickname saved")
	}
	browsertest.WaitJS(t, b, `!document.body.innerText.includes(`+strconvQuote(phone)+`)`, "no phone on the page")
	who, err := chromedp.Run(b, chromedp.TextContent(chromedp.CSS("#who")))
	if err != nil {
		t.Fatal(err)
	}
	id, err := chromedp.Run(b, chromedp.Evaluate[string](`sessionStorage.getItem("onair.user")`))
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
	browsertest.WaitJS(t, b, `document.getElementById("status").textContent === ""`, "connected")
	return id, who
}

func strconvQuote(s string) string { b, _ := json.Marshal(s); return string(b) }

// wireViewer is a plain WebSocket client of a room: it keeps every item
// of every frame, acks gifts and pings, as api.md asks of a client.
type wireViewer struct {
	mu    sync.Mutex
	items []map[string]any
	err   error
}

// dialRoom joins room over GET /v1/ws with a user token of its own.
func dialRoom(t *testing.T, o *testenv.Onair, room int) *wireViewer {
	t.Helper()
	u := "ws" + strings.TrimPrefix(o.URL, "http") + fmt.Sprintf("/v1/ws?room=%d&token=%s", room, o.Token(t, 77, ""))
	ws, resp, err := websocket.DefaultDialer.Dial(u, nil)
	if err != nil {
		t.Fatalf("dial %s: %v %v", u, err, resp)
	}
	t.Cleanup(func() { ws.Close() })
	v := &wireViewer{}
	var wmu sync.Mutex
	write := func(msg string) {
		wmu.Lock()
		defer wmu.Unlock()
		_ = ws.WriteMessage(websocket.TextMessage, []byte(msg))
	}
	ping := time.NewTicker(10 * time.Second)
	t.Cleanup(ping.Stop)
	go func() {
		for range ping.C {
			write(`{"type":"ping"}`)
		}
	}()
	go func() {
		for {
			_, data, err := ws.ReadMessage()
			if err != nil {
				v.mu.Lock()
				v.err = err
				v.mu.Unlock()
				return
			}
			var f struct {
				Type  string           `json:"type"`
				Items []map[string]any `json:"items"`
			}
			_ = decode(data, &f) // numbers as written (user ids exceed float64's exact range in print)
			items := f.Items
			if f.Type != "batch" {
				var one map[string]any
				_ = decode(data, &one)
				items = []map[string]any{one}
			}
			for _, it := range items {
				if it["type"] == "gift" {
					write(fmt.Sprintf(`{"type":"ack","id":%q}`, it["id"]))
				}
			}
			v.mu.Lock()
			v.items = append(v.items, items...)
			v.mu.Unlock()
		}
	}()
	return v
}

// wantGift waits for the gift frame of id from user with value (and a
// seq), and for a leaderboard frame with top at the top with 200.
func (v *wireViewer) wantGift(t *testing.T, id, user, value, top, topNick string) {
	t.Helper()
	testenv.Wait(t, 20*time.Second, func() bool {
		v.mu.Lock()
		defer v.mu.Unlock()
		var gift, board bool
		for _, it := range v.items {
			switch it["type"] {
			case "gift":
				gift = gift || it["id"] == id && it["user_id"] == json.Number(user) && it["value"] == json.Number(value) && it["seq"] != nil
			case "leaderboard":
				items, _ := it["items"].([]any)
				if len(items) > 0 {
					first, _ := items[0].(map[string]any)
					board = board || first["user_id"] == json.Number(top) && first["nickname"] == topNick && first["score"] == json.Number("200")
				}
			}
		}
		return gift && board
	}, "the wire viewer to get gift %s of user %s (with its seq) and a leaderboard frame with user %s at 200", id, user, top)
}

// decode is json.Unmarshal keeping numbers as json.Number.
func decode(data []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	return d.Decode(v)
}
