package push_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/onair/onair/api"
	"github.com/onair/onair/internal/apitest"
	"github.com/onair/onair/internal/kafka"
	"github.com/onair/onair/internal/testenv"
	"github.com/onair/onair/push"
	"github.com/onair/onair/rooms/wire"
)

// env is one test's world: a kfake cluster with the pushes topic, the
// shared Redis under a prefix of its own, and a producer standing in for
// the room owner (which publishes frames and keeps {r<id>}:* in Redis).
type env struct {
	t      *testing.T
	kf     *kafka.Embedded
	rdb    *redis.Client
	prefix string
	prod   *kgo.Client
	secret []byte
}

func newEnv(t *testing.T) *env {
	t.Helper()
	kf := testenv.Kafka(t, 2)
	rdb, prefix := testenv.Redis(t)
	prod, err := kgo.NewClient(kgo.SeedBrokers(kf.Addrs()...), kgo.DefaultProduceTopic(kafka.TopicPushes),
		kgo.ProducerLinger(0), kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(prod.Close)
	return &env{t: t, kf: kf, rdb: rdb, prefix: prefix, prod: prod, secret: []byte("push-test-secret")}
}

// node is one push node behind a real api.Server (token checked at upgrade).
type node struct {
	gw  *push.Gateway
	srv *httptest.Server
	reg *prometheus.Registry
}

func (e *env) node(cfg push.Config) *node {
	e.t.Helper()
	reg := prometheus.NewRegistry()
	if cfg.Redis == nil { // a test may give a node a client of its own (to cut it off)
		cfg.Redis = e.rdb
	}
	cfg.Brokers, cfg.Topic, cfg.Prefix, cfg.Registerer = e.kf.Addrs(), kafka.TopicPushes, e.prefix, reg
	if cfg.BatchInterval == 0 {
		cfg.BatchInterval = 10 * time.Millisecond
	}
	gw, err := push.New(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := gw.Start(ctx); err != nil {
		e.t.Fatal(err)
	}
	a, err := api.New(api.Config{AuthSecret: e.secret, Registry: prometheus.NewRegistry()})
	if err != nil {
		e.t.Fatal(err)
	}
	api.MountPush(a, gw)
	srv := httptest.NewServer(a.Handler())
	e.t.Cleanup(func() {
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = gw.Shutdown(ctx)
	})
	return &node{gw: gw, srv: srv, reg: reg}
}

// openRoom writes {r<id>}:room as the room owner does when a room opens.
func (e *env) openRoom(id uint64) {
	e.t.Helper()
	key := wire.Key(e.prefix, id, wire.KindRoom)
	if err := e.rdb.HSet(context.Background(), key, "status", "open", "anchor_id", 8).Err(); err != nil {
		e.t.Fatal(err)
	}
}

// produce publishes one frame to room and returns its offset (its seq).
func (e *env) produce(room uint64, frame string) int64 {
	e.t.Helper()
	rec := &kgo.Record{Key: []byte(strconv.FormatUint(room, 10)), Value: []byte(frame)}
	if err := e.prod.ProduceSync(context.Background(), rec).FirstErr(); err != nil {
		e.t.Fatal(err)
	}
	return rec.Offset
}

func danmaku(room uint64, user int, text string) string {
	return fmt.Sprintf(`{"type":"danmaku","room_id":%d,"user_id":%d,"text":%q,"ts":%d,"id":"d-%s"}`,
		room, user, text, time.Now().UnixMilli(), text)
}

func gift(room uint64, id string) string {
	return fmt.Sprintf(`{"type":"gift","room_id":%d,"id":%q,"user_id":7,"gift_id":2,"value":200,"anchor_id":8,"ts":%d}`,
		room, id, time.Now().UnixMilli())
}

// msg is a server frame as a client decodes it.
type msg struct {
	Type        string `json:"type"`
	RoomID      uint64 `json:"room_id"`
	Seq         int64  `json:"seq"`
	ID          string `json:"id"`
	Text        string `json:"text"`
	Version     int64  `json:"version"`
	Count       int64  `json:"count"`
	Gap         bool   `json:"gap"`
	Items       []msg  `json:"items"`
	Recent      []msg  `json:"recent"`
	Leaderboard *msg   `json:"leaderboard"`
	PK          *msg   `json:"pk"`
	Online      *msg   `json:"online"`
}

// viewer is a test client.
type viewer struct {
	t  *testing.T
	ws *websocket.Conn
}

func (e *env) dial(n *node, room uint64, user uint64, query string) *viewer {
	e.t.Helper()
	return e.dialWith(websocket.DefaultDialer, n, room, user, query)
}

// smallBufferDialer dials with a 32 KB receive buffer (no autotuning), so a
// viewer that stops reading blocks the server's writes after a few MB
// instead of the tens of MB loopback would otherwise buffer.
var smallBufferDialer = &websocket.Dialer{NetDialContext: (&net.Dialer{
	Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 32<<10) })
		return errors.Join(err, serr)
	}}).DialContext}

func (e *env) dialWith(d *websocket.Dialer, n *node, room uint64, user uint64, query string) *viewer {
	e.t.Helper()
	ws, resp, err := e.tryDialWith(d, n, room, user, query)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		e.t.Fatalf("dial room %d: %v (HTTP %d)", room, err, status)
	}
	e.t.Cleanup(func() { ws.Close() })
	return &viewer{t: e.t, ws: ws}
}

// refusal sends a WebSocket handshake for query ("?room=5...") with hdr
// through apitest's checked client, so every refusal is one the OpenAPI
// document describes, and returns the status and the JSON error's field.
func (e *env) refusal(n *node, query string, hdr http.Header) (status int, field string) {
	e.t.Helper()
	req, _ := http.NewRequest("GET", n.srv.URL+"/v1/ws"+query, nil)
	for k, v := range hdr {
		req.Header[k] = v
	}
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	resp, err := apitest.New(e.t).Client(nil).Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusSwitchingProtocols {
		return resp.StatusCode, ""
	}
	var eb struct {
		Error struct{ Code, Field string } `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&eb); err != nil || eb.Error.Code == "" {
		e.t.Fatalf("%s: HTTP %d, not a JSON error reply (%v)", query, resp.StatusCode, err)
	}
	return resp.StatusCode, eb.Error.Field
}

func (e *env) tryDialWith(d *websocket.Dialer, n *node, room uint64, user uint64, query string) (*websocket.Conn, *http.Response, error) {
	u := "ws" + strings.TrimPrefix(n.srv.URL, "http") + "/v1/ws?room=" + strconv.FormatUint(room, 10) + query
	h := http.Header{"Authorization": {"Bearer " + testenv.SignToken(e.t, e.secret, user, "")}}
	return d.Dial(u, h)
}

// next reads one frame, failing the test after timeout.
func (v *viewer) next(timeout time.Duration) msg {
	v.t.Helper()
	_ = v.ws.SetReadDeadline(time.Now().Add(timeout))
	_, data, err := v.ws.ReadMessage()
	if err != nil {
		v.t.Fatalf("read: %v", err)
	}
	var w msg
	if err := json.Unmarshal(data, &w); err != nil {
		v.t.Fatalf("frame %s: %v", data, err)
	}
	return w
}

// events reads frames until it has seen n events (danmaku and gifts, from
// snapshots and batches), returning them in arrival order.
func (v *viewer) events(n int, timeout time.Duration) []msg {
	v.t.Helper()
	var out []msg
	deadline := time.Now().Add(timeout)
	for len(out) < n {
		if time.Now().After(deadline) {
			v.t.Fatalf("got %d of %d events: %+v", len(out), n, out)
		}
		w := v.next(time.Until(deadline))
		out = append(out, eventsOf(w)...)
	}
	return out
}

// online waits for an online frame whose count satisfies ok and returns
// that count; format and args say what it waits for, as for testenv.Wait.
func (v *viewer) online(ok func(count int64) bool, format string, args ...any) int64 {
	v.t.Helper()
	var got int64
	testenv.Wait(v.t, 10*time.Second, func() bool {
		w := v.next(5 * time.Second)
		for _, it := range append(w.Items, w) {
			if it.Type == wire.TypeOnline && ok(it.Count) {
				got = it.Count
				return true
			}
		}
		return false
	}, format, args...)
	return got
}

func eventsOf(w msg) []msg {
	var out []msg
	for _, list := range [][]msg{w.Recent, w.Items, {w}} {
		for _, it := range list {
			if it.Type == wire.TypeDanmaku || it.Type == wire.TypeGift {
				out = append(out, it)
			}
		}
	}
	return out
}

func (v *viewer) send(s string) {
	v.t.Helper()
	if err := v.ws.WriteMessage(websocket.TextMessage, []byte(s)); err != nil {
		v.t.Fatalf("write: %v", err)
	}
}

// closeCode reads until the server closes and returns the close code.
func (v *viewer) closeCode(timeout time.Duration) (int, string) {
	v.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		_ = v.ws.SetReadDeadline(deadline)
		_, _, err := v.ws.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if ok := asClose(err, &ce); ok {
			return ce.Code, ce.Text
		}
		v.t.Fatalf("read ended without a close frame: %v", err)
	}
}

func asClose(err error, ce **websocket.CloseError) bool {
	c, ok := err.(*websocket.CloseError)
	if ok {
		*ce = c
	}
	return ok
}

func counter(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		total := 0.0
	metric:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue metric
				}
			}
			if m.Counter != nil {
				total += m.Counter.GetValue()
			} else if m.Gauge != nil {
				total += m.Gauge.GetValue()
			}
		}
		return total
	}
	return 0
}

func record(room uint64, frame string) *kgo.Record {
	return &kgo.Record{Key: []byte(strconv.FormatUint(room, 10)), Value: []byte(frame)}
}

func dialer() *websocket.Dialer { return websocket.DefaultDialer }
