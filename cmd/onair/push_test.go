package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/onair/onair/internal/apitest"
	"github.com/onair/onair/internal/kafka"
	"github.com/onair/onair/internal/testenv"
)

// pushNode is an `onair serve --roles push` process (the real binary).
type pushNode struct {
	url  string
	cmd  *exec.Cmd
	log  *syncBuffer
	done chan error
}

func startPushNode(t *testing.T, brokers []string, prefix, db, secret string) *pushNode {
	t.Helper()
	cmd := exec.Command(testenv.OnairBinary(t), "serve", "--roles", "push", "--http-addr", "127.0.0.1:0", "--ops-addr", "127.0.0.1:0",
		"--kafka-brokers", strings.Join(brokers, ","),
		"--redis-addrs", testenv.RedisAddr(t), "--redis-prefix", prefix,
		"--clickhouse-addr", testenv.ClickHouseAddr(t), "--clickhouse-database", db,
		"--auth-secret", secret, "--log-level", "info",
		"--push-online-interval", "200ms", "--push-shutdown-window", "100ms")
	n := &pushNode{cmd: cmd, log: &syncBuffer{}, done: make(chan error, 1)}
	cmd.Stderr = n.log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { n.done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-n.done
	})
	addrRe := regexp.MustCompile(`msg="onair serving".* http=(\S+)`)
	testenv.Wait(t, 90*time.Second, func() bool {
		if m := addrRe.FindStringSubmatch(n.log.String()); m != nil {
			n.url = "http://" + m[1]
		}
		return n.url != ""
	}, "onair serve --roles push to log its address; log:\n%s", n.log)
	return n
}

// TestTwoPushNodes: two `onair serve --roles push` processes, each with its
// own viewers of one room, both deliver every danmaku produced to the
// pushes topic; the head-count each pushes is the sum over both; SIGTERM
// closes a node's viewers with 3001 and the process exits 0. The node
// also serves the live-room page and no ingest route (role push alone).
func TestTwoPushNodes(t *testing.T) {
	t.Parallel()
	kf := testenv.Kafka(t, 2)
	rdb, prefix := testenv.Redis(t)
	_, db := testenv.ClickHouse(t)
	const secret = "push-node-secret"
	a := startPushNode(t, kf.Addrs(), prefix, db, secret)
	b := startPushNode(t, kf.Addrs(), prefix, db, secret)
	ctx := context.Background()
	if err := rdb.HSet(ctx, prefix+"{r5}:room", "status", "open").Err(); err != nil {
		t.Fatal(err)
	}
	dial := func(n *pushNode, user uint64) *websocket.Conn {
		t.Helper()
		u := "ws" + strings.TrimPrefix(n.url, "http") + "/v1/ws?room=5&token=" + testenv.SignToken(t, []byte(secret), user, "")
		ws, _, err := websocket.DefaultDialer.Dial(u, nil)
		if err != nil {
			t.Fatalf("dial %s: %v", n.url, err)
		}
		t.Cleanup(func() { ws.Close() })
		return ws
	}
	va, vb, vb2 := dial(a, 1), dial(b, 2), dial(b, 3)

	prod, err := kgo.NewClient(kgo.SeedBrokers(kf.Addrs()...), kgo.DefaultProduceTopic(kafka.TopicPushes))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	var want []string
	for i := range 10 {
		text := "hello " + strconv.Itoa(i)
		want = append(want, text)
		v := fmt.Sprintf(`{"type":"danmaku","room_id":5,"user_id":1,"text":%q,"ts":1,"id":"e%d"}`, text, i)
		if err := prod.ProduceSync(ctx, &kgo.Record{Key: []byte("5"), Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	for name, ws := range map[string]*websocket.Conn{"node a": va, "node b": vb, "node b, 2nd": vb2} {
		texts, online := readRoom(t, ws, len(want), 3)
		if strings.Join(texts, ",") != strings.Join(want, ",") {
			t.Fatalf("%s got danmaku %q, want %q", name, texts, want)
		}
		if online != 3 {
			t.Fatalf("%s: head-count %d, want 3 (one viewer on a, two on b)", name, online)
		}
	}

	// The page and its 404 as the OpenAPI document has them; /v1/progress is
	// documented, but a push-only node does not mount it (its 404 is the point).
	checker := apitest.New(t)
	checker.Allow("/v1/progress")
	checked := checker.Client(nil)
	for path, status := range map[string]int{"/live/": 200, "/live/app.js": 200, "/live/nope.js": 404, "/v1/progress": 404} {
		method := "GET"
		if path == "/v1/progress" {
			method = "POST"
		}
		req, _ := http.NewRequest(method, a.url+path, nil)
		req.Header.Set("Authorization", "Bearer "+testenv.SignToken(t, []byte(secret), 1, ""))
		resp, err := checked.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != status {
			t.Fatalf("%s %s on a push-only node: %d, want %d", method, path, resp.StatusCode, status)
		}
	}

	_ = a.cmd.Process.Signal(syscall.SIGTERM)
	_ = va.SetReadDeadline(time.Now().Add(20 * time.Second))
	for {
		if _, _, err := va.ReadMessage(); err != nil {
			if ce, ok := err.(*websocket.CloseError); !ok || ce.Code != 3001 {
				t.Fatalf("node a's viewer: %v, want close 3001 shutdown", err)
			}
			break
		}
	}
	select {
	case err := <-a.done:
		a.done <- err
		if err != nil {
			t.Fatalf("node a after SIGTERM: %v; log:\n%s", err, a.log.tail())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("node a did not exit within 30 s of SIGTERM")
	}
	// Node b's viewers now count 2.
	if _, online := readRoom(t, vb, 0, 2); online != 2 {
		t.Fatalf("head-count after node a left: %d, want 2", online)
	}
}

// readRoom reads frames until it has n danmaku texts and an online count
// of wantOnline (the last count seen is returned when it times out).
func readRoom(t *testing.T, ws *websocket.Conn, n int, wantOnline int64) ([]string, int64) {
	t.Helper()
	var texts []string
	online := int64(-1)
	deadline := time.Now().Add(20 * time.Second)
	for (len(texts) < n || online != wantOnline) && time.Now().Before(deadline) {
		_ = ws.SetReadDeadline(deadline)
		_, data, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("read: %v (danmaku so far %q, online %d)", err, texts, online)
		}
		var f struct {
			Type   string
			Text   string
			Count  int64
			Online *struct{ Count int64 }
			Items  []struct {
				Type  string
				Text  string
				Count int64
			}
		}
		if err := json.Unmarshal(data, &f); err != nil {
			t.Fatalf("frame %s: %v", data, err)
		}
		if f.Online != nil {
			online = f.Online.Count
		}
		for _, it := range f.Items {
			switch it.Type {
			case "danmaku":
				texts = append(texts, it.Text)
			case "online":
				online = it.Count
			}
		}
	}
	return texts, online
}
