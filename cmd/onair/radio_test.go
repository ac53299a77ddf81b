package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/onair/onair/internal/apitest"
	"github.com/onair/onair/internal/testenv"
	"github.com/onair/onair/recommend"
)

// TestRadioThroughBinary runs `onair dev` (every role) and a second process,
// `onair serve --roles radio`, on the dev's Kafka, Redis and ClickHouse:
// malformed input is refused naming the field, both processes serve the
// same catalog and playlists after a change, an item taken offline (through
// either process) is gone from both within 2 s — timed by polling, 50 times,
// the p99 logged — and a listener's skip leaves their next playlist within 2 s.
func TestRadioThroughBinary(t *testing.T) {
	t.Parallel()
	a := testenv.StartOnair(t, "")
	bURL := startRadioServe(t, a)
	admin := testenv.SignToken(t, a.Secret, 1, "admin")
	user := testenv.SignToken(t, a.Secret, 42, "")
	checked := apitest.New(t).Client(httpClient) // every exchange against the OpenAPI document
	call := func(method, url, tok string, body any) (int, []byte) {
		t.Helper()
		var rd *bytes.Reader
		if s, ok := body.(string); ok {
			rd = bytes.NewReader([]byte(s))
		} else {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
		req, _ := http.NewRequest(method, url, rd)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := checked.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, url, err)
		}
		defer resp.Body.Close()
		var out bytes.Buffer
		_, _ = out.ReadFrom(resp.Body)
		return resp.StatusCode, out.Bytes()
	}
	wantField := func(code int, body []byte, field string) {
		t.Helper()
		var e struct{ Error struct{ Field string } }
		_ = json.Unmarshal(body, &e)
		if code != http.StatusBadRequest || e.Error.Field != field {
			t.Fatalf("got %d %s, want 400 naming %s", code, body, field)
		}
	}
	stations := recommend.DemoStations()
	bad := stations[0]
	bad.Dayparts = slices.Clone(bad.Dayparts)
	bad.Dayparts[0].Start = "25:00"
	code, body := call(http.MethodPut, a.URL+"/v1/admin/stations/1", admin, bad)
	wantField(code, body, "dayparts[0].start")
	code, body = call(http.MethodPut, bURL+"/v1/admin/catalog", admin, `{"items":[{"item_id":1,"biz":"audio","album_id":1,"status":"gone"}]}`)
	wantField(code, body, "items[0].status")
	if code, body := call(http.MethodPut, a.URL+"/v1/admin/catalog", user, `{"items":[]}`); code != http.StatusForbidden {
		t.Fatalf("a user token put the catalog: %d %s", code, body)
	}

	if code, body := call(http.MethodPut, a.URL+"/v1/admin/catalog", admin, map[string]any{"items": recommend.DemoCatalog()}); code != http.StatusOK {
		t.Fatalf("PUT catalog: %d %s", code, body)
	}
	for _, st := range stations {
		if code, body := call(http.MethodPut, a.URL+"/v1/admin/stations/"+strconv.FormatUint(st.ID, 10), admin, st); code != http.StatusOK {
			t.Fatalf("PUT station %d: %d %s", st.ID, code, body)
		}
	}
	playlist := func(base string) []uint64 {
		t.Helper()
		code, body := call(http.MethodGet, base+"/v1/stations/1/playlist?limit=100", user, "")
		if code == http.StatusNotFound {
			return nil // the station is not read back yet
		}
		if code != http.StatusOK {
			t.Fatalf("GET playlist on %s: %d %s", base, code, body)
		}
		var r struct {
			Items []struct {
				ItemID uint64 `json:"item_id"`
			}
		}
		if err := json.Unmarshal(body, &r); err != nil {
			t.Fatal(err)
		}
		ids := make([]uint64, len(r.Items))
		for i, it := range r.Items {
			ids[i] = it.ItemID
		}
		return ids
	}
	testenv.Wait(t, 10*time.Second, func() bool { return len(playlist(bURL)) > 0 && len(playlist(a.URL)) > 0 },
		"both processes to serve station 1")
	testenv.Wait(t, 2*time.Second, func() bool { return slices.Equal(playlist(a.URL), playlist(bURL)) },
		"both processes to serve the same playlist")
	if code, body := call(http.MethodGet, bURL+"/v1/stations/999/playlist", user, ""); code != http.StatusNotFound {
		t.Fatalf("unknown station: %d %s", code, body)
	}
	code, body = call(http.MethodGet, a.URL+"/v1/admin/stations/1/preview?at=tomorrow", admin, "")
	wantField(code, body, "at")
	code, body = call(http.MethodGet, a.URL+"/v1/admin/stations/1/preview?listener=-1", admin, "")
	wantField(code, body, "listener")
	// The operator's dry run: New Year's Day (a holiday of station 1) at 08:00 Shanghai.
	code, body = call(http.MethodGet, bURL+"/v1/admin/stations/1/preview?at=2027-01-01T08:00:00%2B08:00&listener=42&limit=5", admin, "")
	var pv struct {
		Daypart string
		Items   []struct{ Reason string }
		Relaxed []struct{ Rule, Reason string }
	}
	if err := json.Unmarshal(body, &pv); code != http.StatusOK || err != nil || pv.Daypart != "holiday" || len(pv.Items) != 5 || pv.Relaxed == nil || pv.Items[0].Reason == "" {
		t.Fatalf("preview of New Year's Day: %d %s", code, body)
	}
	_, la := call(http.MethodGet, a.URL+"/v1/stations", user, "")
	_, lb := call(http.MethodGet, bURL+"/v1/stations", user, "")
	if !bytes.Equal(la, lb) || !bytes.Contains(la, []byte(`"id":2`)) {
		t.Fatalf("station lists differ: %s vs %s", la, lb)
	}

	// Offline propagation, through either process, timed by polling both.
	byID := map[uint64]recommend.Item{}
	for _, it := range recommend.DemoCatalog() {
		byID[it.ItemID] = it
	}
	var took []time.Duration
	for round := range 50 {
		top := playlist(a.URL)[0]
		it := byID[top]
		it.Status = recommend.StatusOffline
		via := []string{a.URL, bURL}[round%2]
		t0 := time.Now()
		if code, body := call(http.MethodPut, via+"/v1/admin/catalog", admin, map[string]any{"items": []recommend.Item{it}}); code != http.StatusOK {
			t.Fatalf("PUT offline: %d %s", code, body)
		}
		for _, base := range []string{a.URL, bURL} {
			testenv.Wait(t, 2*time.Second-time.Since(t0), func() bool { return !slices.Contains(playlist(base), top) },
				"item %d still in %s's playlist 2 s after it went offline", top, base)
		}
		took = append(took, time.Since(t0))
	}
	sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
	t.Logf("offline → gone from both processes' playlists, %d changes: p50 %s, p99 %s, max %s", len(took),
		took[len(took)/2].Round(time.Microsecond), took[len(took)*99/100].Round(time.Microsecond), took[len(took)-1].Round(time.Microsecond))

	// A skip on the dev process leaves the listener's playlist on the other.
	skipped := playlist(bURL)[0]
	ev := fmt.Sprintf(`{"events":[{"type":"skip","biz":"%s","item_id":%d,"station_id":1,"ts":%d}]}`, byID[skipped].Biz, skipped, time.Now().UnixMilli())
	t0 := time.Now()
	if code, body := call(http.MethodPost, a.URL+"/v1/events", user, ev); code != http.StatusAccepted {
		t.Fatalf("POST skip: %d %s", code, body)
	}
	testenv.Wait(t, 2*time.Second, func() bool { return !slices.Contains(playlist(bURL), skipped) },
		"skipped item %d still in the listener's playlist after 2 s", skipped)
	t.Logf("skip → gone from the listener's playlist after %s", time.Since(t0).Round(time.Millisecond))
}

// startRadioServe starts `onair serve --roles radio` against o's Kafka,
// Redis and ClickHouse and returns its base URL; stopped at cleanup.
func startRadioServe(t *testing.T, o *testenv.Onair) string {
	t.Helper()
	log := &syncBuffer{}
	cmd := exec.Command(testenv.OnairBinary(t), "serve", "--roles", "radio", "--http-addr", "127.0.0.1:0", "--ops-addr", "127.0.0.1:0",
		"--kafka-brokers", o.KafkaAddr, "--redis-addrs", o.RedisAddr, "--clickhouse-addr", o.ClickHouseAddr,
		"--auth-secret", string(o.Secret), "--log-level", "info")
	cmd.Stderr = log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("onair serve --roles radio: %v; log:\n%s", err, log.tail())
			}
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			t.Errorf("onair serve --roles radio did not stop within 30 s")
		}
	})
	addrRe := regexp.MustCompile(`msg="onair serving".* http=(\S+)`)
	var addr string
	testenv.Wait(t, 60*time.Second, func() bool {
		if m := addrRe.FindStringSubmatch(log.String()); m != nil {
			addr = strings.Trim(m[1], `"`)
		}
		return addr != ""
	}, "onair serve --roles radio to serve; log:\n%s", log.String())
	return "http://" + addr
}

// TestServeRadioOnlyReadyz: a node with only the radio role answers
// /readyz with the checks of what radio depends on (Redis holds its
// stations, Kafka its catalog and feedback, ClickHouse its rows); it used
// to check nothing and always say ready.
func TestServeRadioOnlyReadyz(t *testing.T) {
	t.Parallel()
	kf := testenv.Kafka(t, 1)
	s := startServe(t, kf.Addrs(), "--roles", "radio")
	code, body := do(t, http.MethodGet, s.url+"/readyz", "", nil)
	var reply struct{ Checks map[string]string }
	if err := json.Unmarshal([]byte(body), &reply); err != nil || code != http.StatusOK {
		t.Fatalf("/readyz of a radio node: %d %s (%v), want 200", code, body, err)
	}
	for _, dep := range []string{"redis", "clickhouse", "kafka"} {
		if reply.Checks[dep] != "ok" {
			t.Errorf("/readyz of a radio node: checks %v, want %s ok", reply.Checks, dep)
		}
	}
}
