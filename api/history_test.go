package api

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/onair/onair/history"
	"github.com/onair/onair/ingest"
	"github.com/onair/onair/internal/refusal"
)

// nopHistory is a History that does nothing, for benchmarks.
type nopHistory struct{ fakeHistory }

func (*nopHistory) Touch(context.Context, uint64, time.Time) (bool, bool, error) {
	return false, false, nil
}

var (
	audio123 = history.Entry{Biz: ingest.BizAudio, ItemID: 123, PositionMs: 61000, DurationMs: 1800000, UpdatedAt: 1763800000123, Device: "ios-7f3a"}
	video9   = history.Entry{Biz: ingest.BizVideo, ItemID: 9, PositionMs: 60000, DurationMs: 60000, Finished: true, UpdatedAt: 1763800000000, Device: `a"b`}
)

const (
	audio123JSON = `{"biz":"audio","item_id":123,"position_ms":61000,"duration_ms":1800000,"finished":false,"updated_at":1763800000123,"device":"ios-7f3a"}`
	video9JSON   = `{"biz":"video","item_id":9,"position_ms":60000,"duration_ms":60000,"finished":true,"updated_at":1763800000000,"device":"a\"b"}`
)

func TestGetHistory(t *testing.T) {
	e := newEnv(t, nil)
	tok := token(t, 42, "")
	e.hist.page = history.Page{Items: []history.Entry{audio123, video9}, NextCursor: "MTc2MzgwMDAwMDAwMDoyOjk"}
	r := e.get("/v1/history?biz=audio&limit=2&cursor=abc", tok)
	want := `{"items":[` + audio123JSON + `,` + video9JSON + `],"next_cursor":"MTc2MzgwMDAwMDAwMDoyOjk"}` + "\n"
	if r.status != 200 || r.body != want {
		t.Fatalf("got %d %s\nwant %s", r.status, r.body, want)
	}
	if e.hist.gotBiz != ingest.BizAudio || e.hist.gotLimit != 2 || e.hist.gotCur != "abc" {
		t.Fatalf("store got biz %v limit %d cursor %q", e.hist.gotBiz, e.hist.gotLimit, e.hist.gotCur)
	}
	e.hist.page = history.Page{}
	if r := e.get("/v1/history", tok); r.body != `{"items":[],"next_cursor":null}`+"\n" {
		t.Fatalf("last page %s", r.body)
	}
	if e.hist.gotBiz != ingest.BizNone || e.hist.gotLimit != DefaultPageLimit {
		t.Fatalf("defaults: biz %v limit %d", e.hist.gotBiz, e.hist.gotLimit)
	}
}

func TestGetProgress(t *testing.T) {
	e := newEnv(t, nil)
	e.hist.entries = map[history.ItemKey]history.Entry{audio123.Key(): audio123, video9.Key(): video9}
	r := e.get("/v1/progress?items=audio:123,video:9,comic:5,audio:123", token(t, 42, ""))
	want := `{"items":{"audio:123":` + audio123JSON + `,"video:9":` + video9JSON + `}}` + "\n"
	if r.status != 200 || r.body != want {
		t.Fatalf("got %d %s\nwant %s", r.status, r.body, want)
	}
	if r := e.get("/v1/progress?items=comic:5", token(t, 42, "")); r.body != `{"items":{}}`+"\n" {
		t.Fatalf("none found: %s", r.body)
	}
}

func TestHistoryWrites(t *testing.T) {
	e := newEnv(t, nil)
	tok := token(t, 42, "")
	f := func(method, path, body, call string) {
		t.Helper()
		e.hist.calls = nil
		r := e.do(method, path, tok, strings.NewReader(body))
		if r.status != 204 || r.body != "" {
			t.Fatalf("%s %s: %d %s", method, path, r.status, r.body)
		}
		if len(e.hist.calls) != 1 || e.hist.calls[0] != call {
			t.Fatalf("%s %s: store calls %v, want %q", method, path, e.hist.calls, call)
		}
	}
	f("DELETE", "/v1/history/audio/123", "", "delete 42 audio 123")
	f("DELETE", "/v1/history", "", "clear 42 ")
	f("DELETE", "/v1/history?biz=video", "", "clear 42 video")
	f("POST", "/v1/continue/comic/5/hide", "", "hide 42 comic 5")
}

func TestSettings(t *testing.T) {
	e := newEnv(t, nil)
	tok := token(t, 42, "")
	if r := e.get("/v1/history/settings", tok); r.status != 200 || r.body != `{"history_paused":false}`+"\n" {
		t.Fatalf("get: %d %s", r.status, r.body)
	}
	r := e.do("PUT", "/v1/history/settings", tok, strings.NewReader(`{"history_paused": true}`))
	if r.status != 200 || r.body != `{"history_paused":true}`+"\n" {
		t.Fatalf("put: %d %s", r.status, r.body)
	}
	if r := e.get("/v1/history/settings", tok); r.body != `{"history_paused":true}`+"\n" {
		t.Fatalf("get after put: %s", r.body)
	}
}

func TestGetContinue(t *testing.T) {
	e := newEnv(t, nil)
	e.hist.cont = []history.Entry{audio123}
	r := e.get("/v1/continue?biz=audio&limit=5", token(t, 42, ""))
	if r.status != 200 || r.body != `{"items":[`+audio123JSON+`]}`+"\n" {
		t.Fatalf("got %d %s", r.status, r.body)
	}
	if e.hist.gotBiz != ingest.BizAudio || e.hist.gotLimit != 5 {
		t.Fatalf("store got biz %v limit %d", e.hist.gotBiz, e.hist.gotLimit)
	}
}

// TestParamValidation: every bad query, path or body parameter is a 400
// naming it.
func TestParamValidation(t *testing.T) {
	e := newEnv(t, nil)
	tok := token(t, 42, "")
	f := func(method, path, body, field string) {
		t.Helper()
		r := e.do(method, path, tok, strings.NewReader(body))
		if r.status != 400 {
			t.Fatalf("%s %s: status %d, want 400; %s", method, path, r.status, r.body)
		}
		if b := r.err(t); b.Error.Code != refusal.CodeInvalidArgument || b.Error.Field != field {
			t.Fatalf("%s %s: error %+v, want field %q", method, path, b.Error, field)
		}
	}
	for _, route := range []string{"/v1/history", "/v1/continue"} {
		f("GET", route+"?biz=podcast", "", "biz")
		f("GET", route+"?biz=AUDIO", "", "biz")
		for _, l := range []string{"0", "101", "-1", "abc", "1.5", "%2B5", "%205"} {
			f("GET", route+"?limit="+l, "", "limit")
		}
	}
	f("GET", "/v1/history?cursor=bad", "", "cursor")
	f("DELETE", "/v1/history?biz=nope", "", "biz")

	f("GET", "/v1/progress", "", "items")
	f("GET", "/v1/progress?items=", "", "items")
	for _, items := range []string{"audio", "audio:", "audio:0", "audio:-1", "podcast:1", "audio:1,", ",audio:1", "audio:x", "audio:1:2"} {
		f("GET", "/v1/progress?items="+items, "", "items")
	}
	f("GET", "/v1/progress?items="+strings.Repeat("audio:1,", MaxProgressItems)+"audio:1", "", "items")

	for _, p := range []string{"/v1/history/%s/%s", "/v1/continue/%s/%s/hide"} {
		method := "DELETE"
		if strings.HasSuffix(p, "hide") {
			method = "POST"
		}
		path := func(biz, id string) string {
			return strings.Replace(strings.Replace(p, "%s", biz, 1), "%s", id, 1)
		}
		f(method, path("podcast", "1"), "", "biz")
		for _, id := range []string{"0", "-1", "abc", "1.0", "9223372036854775808", "18446744073709551616"} {
			f(method, path("audio", id), "", "item_id")
		}
	}

	f("PUT", "/v1/history/settings", `{}`, "history_paused")
	f("PUT", "/v1/history/settings", `{"history_paused":null}`, "history_paused")
	f("PUT", "/v1/history/settings", `{"history_paused":"yes"}`, "history_paused")
	f("PUT", "/v1/history/settings", `[`, "")
	f("PUT", "/v1/history/settings", ``, "")
}

func TestHistoryUnavailable(t *testing.T) {
	e := newEnv(t, nil)
	e.hist.err = errors.New("redis: connection refused")
	tok := token(t, 42, "")
	for _, r := range []reply{
		e.get("/v1/history", tok),
		e.get("/v1/progress?items=audio:1", tok),
		e.get("/v1/continue", tok),
		e.get("/v1/history/settings", tok),
		e.do("DELETE", "/v1/history/audio/1", tok, nil),
	} {
		wantError(t, r, 503, refusal.CodeUnavailable, "")
	}
	// The store's own validation errors stay 400s.
	e.hist.err = history.ErrBadLimit
	wantError(t, e.get("/v1/continue", tok), 400, refusal.CodeInvalidArgument, "limit")
}
