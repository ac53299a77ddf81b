package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/onair/onair/ingest"
	"github.com/onair/onair/internal/chdb"
	"github.com/onair/onair/internal/kafka"
	"github.com/onair/onair/internal/testenv"
)

// TestDevRestartKeepsEverything: events accepted by `onair dev` survive a
// clean stop and a restart on the same data directory — in Kafka (every
// record, with its key), in ClickHouse (every event exactly once, the
// restarted aggregator does not insert them again) and in the history.
func TestDevRestartKeepsEverything(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	o := testenv.StartOnair(t, dir, "--log-level", "info")
	users := []uint64{42, 43, 44}
	// The token of user 42 comes from `onair token`: dev and token must
	// share <data-dir>/auth.secret.
	tokens := map[uint64]string{42: mintToken(t, "--data-dir", dir, "--user", "42")}
	for _, u := range users[1:] {
		tokens[u] = o.Token(t, u, "")
	}
	service := o.Token(t, 9000, "service")

	now := time.Now().UnixMilli()
	want := map[string]ingest.Event{} // by event_id
	for _, u := range users {
		for i := range 3 {
			e := apiEvent{Biz: "audio", ItemID: 100 + uint64(i), PositionMs: 1000 * uint64(i+1), DurationMs: 600_000,
				TS: now - int64(10-i), Device: "ios-1", EventID: fmt.Sprintf("u%d-p%d", u, i)}
			postOK(t, o.URL+"/v1/progress", tokens[u], e)
			want[e.EventID] = e.event(u)
		}
		batch := []apiEvent{
			{Type: "progress", Biz: "video", ItemID: 7, PositionMs: 5000, DurationMs: 60_000, TS: now, EventID: fmt.Sprintf("u%d-b0", u)},
			{Type: "play", Biz: "radio", ItemID: 77, StationID: 3, ListenedMs: 30_000, TS: now, EventID: fmt.Sprintf("u%d-b1", u)},
			{Type: "like", Biz: "audio", ItemID: 100, TS: now, EventID: fmt.Sprintf("u%d-b2", u)},
			{Type: "skip", Biz: "audio", ItemID: 101, TS: now, EventID: fmt.Sprintf("u%d-b3", u)},
		}
		postOK(t, o.URL+"/v1/events", tokens[u], map[string]any{"events": batch})
		for _, e := range batch {
			want[e.EventID] = e.event(u)
		}
	}
	// A trusted backend posts for a user who never posts himself.
	// (gifts are paid for: only a service may still post a gift event)
	svc := []apiEvent{{Type: "danmaku", UserID: 45, RoomID: 5, Text: "hello", TS: now, EventID: "u45-s0"},
		{Type: "gift", UserID: 45, RoomID: 5, AnchorID: 8, GiftID: 2, Value: 200, TS: now, EventID: "u45-s1"}}
	postOK(t, o.URL+"/v1/events", service, map[string]any{"events": svc})
	want["u45-s0"], want["u45-s1"] = svc[0].event(45), svc[1].event(45)
	users = append(users, 45)

	ch, err := chdb.Open(chdb.Config{Addr: o.ClickHouseAddr})
	if err != nil {
		t.Fatal(err)
	}
	events := o.Database + ".events"
	testenv.Wait(t, 20*time.Second, func() bool { n, _ := chCount(ch, events); return n >= uint64(len(want)) },
		"%d events in ClickHouse %s", len(want), events)
	checkOnce(t, ch, events, len(want), o)
	historyBefore := getOK(t, o.URL+"/v1/history?limit=100", tokens[42])
	if !strings.Contains(historyBefore, `"item_id":102`) {
		t.Fatalf("history of user 42 lacks audio 102: %s", historyBefore)
	}
	ch.Close()
	o.Stop(t)

	o2 := testenv.StartOnair(t, dir, "--log-level", "info")
	if !bytes.Equal(o2.Secret, o.Secret) {
		t.Fatalf("auth.secret changed across the restart")
	}
	recs := readTopic(t, []string{o2.KafkaAddr}, kafka.TopicEvents)
	checkRecords(t, recs, want)

	// The restarted server reads the history it had before.
	if got := getOK(t, o2.URL+"/v1/history?limit=100", tokens[42]); got != historyBefore {
		t.Fatalf("history of user 42 after the restart:\n%s\nbefore:\n%s", got, historyBefore)
	}

	// One more event per user lands on every partition that holds the old
	// ones (same keys); once all of them are in ClickHouse, the restarted
	// aggregator has gone past every old record and would have inserted any
	// duplicate by then.
	for _, u := range users {
		e := apiEvent{Type: "like", UserID: u, Biz: "comic", ItemID: 1, TS: time.Now().UnixMilli(), EventID: fmt.Sprintf("sentinel-%d", u)}
		postOK(t, o2.URL+"/v1/events", o2.Token(t, 9000, "service"), map[string]any{"events": []apiEvent{e}})
	}
	ch2, err := chdb.Open(chdb.Config{Addr: o2.ClickHouseAddr})
	if err != nil {
		t.Fatal(err)
	}
	defer ch2.Close()
	ctx := context.Background()
	testenv.Wait(t, 20*time.Second, func() bool {
		var n uint64
		err := ch2.QueryRow(ctx, "SELECT count() FROM "+events+" WHERE event_id LIKE 'sentinel-%'").Scan(&n)
		return err == nil && n >= uint64(len(users))
	}, "the sentinel events in ClickHouse after the restart")
	checkOnce(t, ch2, events, len(want), o2)
	rows, err := ch2.Query(ctx, "SELECT event_id, user_id FROM "+events+" WHERE event_id NOT LIKE 'sentinel-%'")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var uid uint64
		if err := rows.Scan(&id, &uid); err != nil {
			t.Fatal(err)
		}
		if w, ok := want[id]; !ok || w.UserID != uid {
			t.Errorf("ClickHouse row %s of user %d was never posted (or for another user: %+v)", id, uid, w)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
}

// TestDevPortInUse: a second `onair dev` on a port the first one holds
// stops at once with an error that says so, and leaves the first one up.
func TestDevPortInUse(t *testing.T) {
	t.Parallel()
	o := testenv.StartOnair(t, "")
	port := func(addr string) string {
		_, p, err := net.SplitHostPort(strings.TrimPrefix(addr, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, c := range []struct{ name, flag, value string }{
		{"kafka", "--dev-kafka-port", port(o.KafkaAddr)},
		{"redis", "--dev-redis-port", port(o.RedisAddr)},
		{"clickhouse", "--dev-clickhouse-port", port(o.ClickHouseAddr)},
		{"clickhouse-http", "--dev-clickhouse-http-port", port(o.ClickHouseHTTPAddr)},
		{"postgres", "--dev-postgres-port", port(o.PostgresAddr)},
		{"http", "--http-addr", strings.TrimPrefix(o.URL, "http://")},
	} {
		t.Run(c.name, func(t *testing.T) {
			args := []string{"dev", "--data-dir", testenv.DataDir(t), "--log-level", "warn", "--http-addr", "127.0.0.1:0", "--ops-addr", "127.0.0.1:0",
				"--dev-kafka-port", "0", "--dev-redis-port", "0", "--dev-clickhouse-port", "0", "--dev-clickhouse-http-port", "0", "--dev-postgres-port", "0",
				c.flag, c.value}
			code, stdout, stderr, took := runOnair(t, 60*time.Second, args...)
			if code == 0 || code == -1 {
				t.Fatalf("second onair dev with %s %s: exit status %d, want a failure; stdout:\n%s\nstderr:\n%s", c.flag, c.value, code, stdout, stderr)
			}
			if !strings.Contains(stderr, "already in use") || !strings.Contains(stderr, c.value) {
				t.Fatalf("second onair dev with %s %s: stderr does not say the port is already in use:\n%s", c.flag, c.value, stderr)
			}
			if strings.Contains(stdout, "onair dev is up") {
				t.Fatalf("second onair dev printed its banner:\n%s", stdout)
			}
			// Fast: no retries, no waiting for a port that will not free up
			// (ClickHouse's own start is the slow part of the later checks).
			if took > 30*time.Second {
				t.Fatalf("second onair dev took %s to fail", took)
			}
		})
	}
	if got := getOK(t, o.URL+"/healthz", ""); !strings.Contains(got, "ok") {
		t.Fatalf("first onair dev after the conflicts: /healthz %s", got)
	}
}

// checkOnce asserts that table holds n rows besides the sentinels, each
// with its own event id, and lists the rows when it does not.
func checkOnce(t testing.TB, ch2 driver.Conn, events string, want int, o2 *testenv.Onair) {
	t.Helper()
	ctx := context.Background()
	var n, uniq uint64
	if err := ch2.QueryRow(ctx, "SELECT count(), uniqExact(event_id) FROM "+events+" WHERE event_id NOT LIKE 'sentinel-%'").Scan(&n, &uniq); err != nil {
		t.Fatal(err)
	}
	if n != uint64(want) || uniq != uint64(want) {
		var dups []string
		rows, err := ch2.Query(ctx, "SELECT event_id, kafka_partition, kafka_offset, ingested_at FROM "+events+" ORDER BY event_id, ingested_at")
		if err == nil {
			for rows.Next() {
				var id string
				var p uint32
				var off uint64
				var at time.Time
				if rows.Scan(&id, &p, &off, &at) == nil {
					dups = append(dups, fmt.Sprintf("%s p%d@%d %s", id, p, off, at.Format(time.TimeOnly)))
				}
			}
			rows.Close()
		}
		t.Fatalf("%s holds %d rows with %d distinct event ids, want %d exactly once; rows (event_id partition@offset ingested_at):\n%s\nonair stderr:\n%s",
			events, n, uniq, want, strings.Join(dups, "\n"), notableLog(o2))
	}
}

// notableLog returns the warnings, errors and resume decisions of every run
// on o's data directory.
func notableLog(o *testenv.Onair) string {
	b, _ := os.ReadFile(filepath.Join(o.DataDir, "onair.stderr.log"))
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, "level=WARN") || strings.Contains(l, "level=ERROR") || strings.Contains(l, "resum") ||
			strings.Contains(l, "--- testenv") || strings.Contains(l, "signal received") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// apiEvent is an event as the HTTP API takes it.
type apiEvent struct {
	Type       string `json:"type,omitempty"`
	UserID     uint64 `json:"user_id,omitempty"`
	Biz        string `json:"biz,omitempty"`
	ItemID     uint64 `json:"item_id,omitempty"`
	PositionMs uint64 `json:"position_ms,omitempty"`
	DurationMs uint64 `json:"duration_ms,omitempty"`
	ListenedMs uint64 `json:"listened_ms,omitempty"`
	StationID  uint64 `json:"station_id,omitempty"`
	RoomID     uint64 `json:"room_id,omitempty"`
	AnchorID   uint64 `json:"anchor_id,omitempty"`
	GiftID     uint64 `json:"gift_id,omitempty"`
	Value      uint64 `json:"value,omitempty"`
	Text       string `json:"text,omitempty"`
	TS         int64  `json:"ts"`
	Device     string `json:"device,omitempty"`
	EventID    string `json:"event_id,omitempty"`
}

// event is the record the server should produce for e posted as user.
func (e apiEvent) event(user uint64) ingest.Event {
	typ := ingest.TypeProgress
	if e.Type != "" {
		var ok bool
		if typ, ok = ingest.ParseType(e.Type); !ok {
			panic("bad test event type " + e.Type)
		}
	}
	biz, _ := ingest.ParseBiz(e.Biz)
	return ingest.Event{Type: typ, UserID: user, Biz: biz, ItemID: e.ItemID, TS: e.TS,
		PositionMs: e.PositionMs, DurationMs: e.DurationMs, ListenedMs: e.ListenedMs, StationID: e.StationID,
		RoomID: e.RoomID, AnchorID: e.AnchorID, GiftID: e.GiftID, Value: e.Value,
		EventID: e.EventID, Device: e.Device, Text: e.Text}
}

var httpClient = &http.Client{Timeout: 30 * time.Second}

// do sends body (JSON-encoded unless nil) and returns the status and body.
func do(t testing.TB, method, url, token string, body any) (int, string) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the reply: %v", method, url, err)
	}
	return resp.StatusCode, string(b)
}

func postOK(t testing.TB, url, token string, body any) string {
	t.Helper()
	code, reply := do(t, http.MethodPost, url, token, body)
	if code != http.StatusAccepted {
		t.Fatalf("POST %s: %d %s, want 202", url, code, reply)
	}
	return reply
}

func getOK(t testing.TB, url, token string) string {
	t.Helper()
	code, reply := do(t, http.MethodGet, url, token, nil)
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d %s, want 200", url, code, reply)
	}
	return reply
}

// mintToken runs `onair token args...` in-process and returns the token.
func mintToken(t testing.TB, args ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	if code := run(context.Background(), append([]string{"token"}, args...), &out, &errb); code != 0 {
		t.Fatalf("onair token %v: exit status %d: %s", args, code, errb.String())
	}
	return strings.TrimSpace(out.String())
}

// readTopic reads every record of topic from the start with a fresh client
// and no group, up to the end offsets of the moment it is called.
func readTopic(t testing.TB, brokers []string, topic string) []*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatalf("end offsets of %s: %v", topic, err)
	}
	want := map[int32]int64{}
	var listErr error
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			listErr = o.Err
		}
		if o.Offset > 0 {
			want[o.Partition] = o.Offset
		}
	})
	if listErr != nil {
		t.Fatalf("end offsets of %s: %v", topic, listErr)
	}
	next := map[int32]int64{}
	var recs []*kgo.Record
	caughtUp := func() bool {
		for p, end := range want {
			if next[p] < end {
				return false
			}
		}
		return true
	}
	for !caughtUp() {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("reading %s: got %d records up to %v, end offsets %v: %v", topic, len(recs), next, want, err)
		}
		fs.EachError(func(tp string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", tp, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset < want[r.Partition] {
				recs = append(recs, r)
			}
			next[r.Partition] = r.Offset + 1
		})
	}
	return recs
}

// checkRecords asserts that recs are exactly the events of want, each once,
// keyed by its decimal user id, decoding to what was posted.
func checkRecords(t testing.TB, recs []*kgo.Record, want map[string]ingest.Event) {
	t.Helper()
	seen := map[string]int{}
	for _, r := range recs {
		var e ingest.Event
		if err := ingest.DecodeRecord(r.Value, &e); err != nil {
			t.Errorf("record %d/%d: %v", r.Partition, r.Offset, err)
			continue
		}
		seen[e.EventID]++
		if k := strconv.FormatUint(e.UserID, 10); string(r.Key) != k {
			t.Errorf("record %s (%d/%d): key %q, want %q (its user id)", e.EventID, r.Partition, r.Offset, r.Key, k)
		}
		w, ok := want[e.EventID]
		if !ok {
			t.Errorf("record %d/%d %+v was never posted", r.Partition, r.Offset, e)
			continue
		}
		if e != w {
			t.Errorf("record %d/%d decodes to\n%+v\nposted\n%+v", r.Partition, r.Offset, e, w)
		}
	}
	for id := range want {
		if seen[id] != 1 {
			t.Errorf("event %s is in Kafka %d times, want once", id, seen[id])
		}
	}
	if len(recs) != len(want) {
		t.Errorf("topic holds %d records, want %d", len(recs), len(want))
	}
}

func chCount(ch driver.Conn, table string) (uint64, error) {
	var n uint64
	err := ch.QueryRow(context.Background(), "SELECT count() FROM "+table).Scan(&n)
	return n, err
}

// runOnair runs the built binary with a clean ONAIR_* environment and
// returns its exit status (-1: killed after timeout), output and run time.
func runOnair(t testing.TB, timeout time.Duration, args ...string) (code int, stdout, stderr string, took time.Duration) {
	t.Helper()
	bin := testenv.OnairBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = testenv.ChildEnv()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	start := time.Now()
	err := cmd.Run()
	took = time.Since(start)
	var ee *exec.ExitError
	switch {
	case err == nil:
	case ctx.Err() != nil:
		code = -1
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatalf("%s %v: %v", filepath.Base(bin), args, err)
	}
	return code, out.String(), errb.String(), took
}
