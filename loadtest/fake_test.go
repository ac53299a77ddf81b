package loadtest

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// startTarget starts the onair the scenario tests attack and returns its
// base URL and token secret. It is the fake below until the real onair can
// be started in-process; the lead swaps it for one that starts onair.
var startTarget = func(t *testing.T) (string, []byte) {
	f := newFakeAPI(t)
	return f.url, f.secret
}

// fakeAPI is loadtest's test double of onair's HTTP API: the five
// endpoints the scenarios hit, with api.md's status codes and token rules,
// an in-memory history, and a record of event ids that stands in for
// ClickHouse. Faults are injected by failEvery (500 on every Nth write),
// dropEvery (every Nth event never reaches the store) and dupEvery (every
// Nth event is stored twice).
type fakeAPI struct {
	url    string
	secret []byte

	failEvery, dropEvery, dupEvery int
	dropHistory                    bool // accept writes but never show them in history (an API without aggregator)
	coldReads                      bool // answer each user's first history read 503, as a slow warm from ClickHouse
	readOnce                       map[uint64]bool

	mu      sync.Mutex
	writes  int
	events  int
	stored  map[string]uint64                 // event_id -> rows
	history map[uint64]map[string]historyItem // user -> biz:item -> latest
}

type historyItem struct {
	Biz        string `json:"biz"`
	ItemID     uint64 `json:"item_id"`
	PositionMS int64  `json:"position_ms"`
	DurationMS int64  `json:"duration_ms"`
	Finished   bool   `json:"finished"`
	UpdatedAt  int64  `json:"updated_at"`
	Device     string `json:"device"`
}

type fakeEvent struct {
	Type       string `json:"type"`
	UserID     uint64 `json:"user_id"`
	Biz        string `json:"biz"`
	ItemID     uint64 `json:"item_id"`
	PositionMS int64  `json:"position_ms"`
	DurationMS int64  `json:"duration_ms"`
	ListenedMS int64  `json:"listened_ms"`
	TS         int64  `json:"ts"`
	Device     string `json:"device"`
	EventID    string `json:"event_id"`
}

func newFakeAPI(t *testing.T) *fakeAPI {
	f := &fakeAPI{
		secret:  []byte("fake-secret"),
		stored:  map[string]uint64{},
		history: map[uint64]map[string]historyItem{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/progress", f.auth(f.progress))
	mux.HandleFunc("POST /v1/events", f.auth(f.batch))
	mux.HandleFunc("GET /v1/history", f.auth(f.listHistory(false)))
	mux.HandleFunc("GET /v1/continue", f.auth(f.listHistory(true)))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	f.url = srv.URL
	return f
}

func writeErr(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": code, "message": msg}})
}

func writeOK(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// fakeCaller is a verified token: a user, or a service that may post for
// any user.
type fakeCaller struct {
	uid     uint64
	service bool
}

func (f *fakeAPI) auth(h func(http.ResponseWriter, *http.Request, fakeCaller)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok {
			writeErr(w, 401, "unauthenticated", "missing bearer token")
			return
		}
		var c struct {
			jwt.RegisteredClaims
			Role string `json:"role"`
		}
		_, err := jwt.ParseWithClaims(tok, &c, func(*jwt.Token) (any, error) { return f.secret, nil },
			jwt.WithValidMethods([]string{"HS256"}), jwt.WithExpirationRequired())
		uid, perr := strconv.ParseUint(c.Subject, 10, 64)
		if err != nil || perr != nil || uid == 0 {
			writeErr(w, 401, "unauthenticated", "invalid token")
			return
		}
		if r.Header.Get(trackHeader) != "" {
			writeErr(w, 400, "invalid_argument", "tracking header leaked to the server")
			return
		}
		if c.Role != "" && c.Role != "service" && c.Role != "admin" {
			writeErr(w, 401, "unauthenticated", "bad role")
			return
		}
		h(w, r, fakeCaller{uid: uid, service: c.Role == "service"})
	}
}

func validEvent(e fakeEvent) bool {
	switch e.Biz {
	case "audio", "video", "live", "article", "comic", "radio":
	default:
		return false
	}
	now := time.Now().UnixMilli()
	return e.ItemID > 0 && e.EventID != "" && len(e.EventID) <= 64 &&
		e.TS <= now+5*60_000 && e.TS >= now-30*24*3600_000
}

func (f *fakeAPI) progress(w http.ResponseWriter, r *http.Request, c fakeCaller) {
	var e fakeEvent
	if err := json.NewDecoder(r.Body).Decode(&e); err != nil || !validEvent(e) || e.DurationMS <= 0 {
		writeErr(w, 400, "invalid_argument", "bad progress")
		return
	}
	e.Type = "progress"
	if c.service || (e.UserID != 0 && e.UserID != c.uid) {
		writeErr(w, 403, "permission_denied", "progress is the caller's own")
		return
	}
	e.UserID = c.uid
	if !f.accept([]fakeEvent{e}) {
		writeErr(w, 500, "internal", "injected failure")
		return
	}
	writeOK(w, 202, map[string]any{"accepted": true, "first_today": false, "history_paused": false})
}

func (f *fakeAPI) batch(w http.ResponseWriter, r *http.Request, c fakeCaller) {
	var b struct {
		Events []fakeEvent `json:"events"`
	}
	if r.ContentLength > 1<<20 {
		writeErr(w, 413, "too_large", "batch too large")
		return
	}
	if err := json.NewDecoder(r.Body).Decode(&b); err != nil || len(b.Events) == 0 || len(b.Events) > 1000 {
		writeErr(w, 400, "invalid_argument", "bad batch")
		return
	}
	for i, e := range b.Events {
		if !validEvent(e) || (e.Type != "progress" && e.Type != "play" && e.Type != "like") {
			writeErr(w, 400, "invalid_argument", "bad event")
			return
		}
		switch {
		case c.service && e.UserID == 0:
			writeErr(w, 400, "invalid_argument", "user_id is required with a service token")
			return
		case !c.service && e.UserID != 0 && e.UserID != c.uid:
			writeErr(w, 403, "permission_denied", "user_id names another user")
			return
		case !c.service:
			b.Events[i].UserID = c.uid
		}
	}
	if !f.accept(b.Events) {
		writeErr(w, 500, "internal", "injected failure")
		return
	}
	writeOK(w, 202, map[string]int{"accepted": len(b.Events)})
}

// accept applies events (UserID set), newer ts wins, and reports false for
// an injected failure.
func (f *fakeAPI) accept(evs []fakeEvent) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.writes++
	if f.failEvery > 0 && f.writes%f.failEvery == 0 {
		return false
	}
	for _, e := range evs {
		f.events++
		switch {
		case f.dropEvery > 0 && f.events%f.dropEvery == 0:
		case f.dupEvery > 0 && f.events%f.dupEvery == 0:
			f.stored[e.EventID] += 2
		default:
			f.stored[e.EventID]++
		}
		if e.Type != "progress" || f.dropHistory {
			continue
		}
		h := f.history[e.UserID]
		if h == nil {
			h = map[string]historyItem{}
			f.history[e.UserID] = h
		}
		key := e.Biz + ":" + strconv.FormatUint(e.ItemID, 10)
		if old, ok := h[key]; ok && old.UpdatedAt > e.TS {
			continue
		}
		h[key] = historyItem{Biz: e.Biz, ItemID: e.ItemID, PositionMS: e.PositionMS, DurationMS: e.DurationMS,
			Finished: e.PositionMS*100 >= e.DurationMS*95, UpdatedAt: e.TS, Device: e.Device}
	}
	return true
}

func (f *fakeAPI) listHistory(unfinished bool) func(http.ResponseWriter, *http.Request, fakeCaller) {
	return func(w http.ResponseWriter, r *http.Request, c fakeCaller) {
		uid := c.uid
		f.mu.Lock()
		cold := f.coldReads && !f.readOnce[uid]
		if f.readOnce == nil {
			f.readOnce = map[uint64]bool{}
		}
		f.readOnce[uid] = true
		f.mu.Unlock()
		if cold {
			writeErr(w, 503, "unavailable", "history temporarily unavailable, retry")
			return
		}
		limit, err := strconv.Atoi(r.URL.Query().Get("limit"))
		if err != nil || limit < 1 || limit > 100 {
			writeErr(w, 400, "invalid_argument", "bad limit")
			return
		}
		f.mu.Lock()
		items := []historyItem{}
		for _, it := range f.history[uid] {
			if !unfinished || !it.Finished {
				items = append(items, it)
			}
		}
		f.mu.Unlock()
		sort.Slice(items, func(i, j int) bool { return items[i].UpdatedAt > items[j].UpdatedAt })
		if len(items) > limit {
			items = items[:limit]
		}
		writeOK(w, 200, map[string]any{"items": items, "next_cursor": nil})
	}
}

// fakeAPI is E2E's event store in tests, standing in for ClickHouse.
var _ eventStore = (*fakeAPI)(nil)

func (f *fakeAPI) Rows(_ context.Context, prefix string, _ time.Time) (uint64, error) {
	c, _ := f.Counts(context.Background(), prefix, time.Time{})
	var n uint64
	for _, k := range c {
		n += k
	}
	return n, nil
}

func (f *fakeAPI) Distinct(_ context.Context, prefix string, _ time.Time) (uint64, error) {
	c, _ := f.Counts(context.Background(), prefix, time.Time{})
	return uint64(len(c)), nil
}

func (f *fakeAPI) Counts(_ context.Context, prefix string, _ time.Time) (map[string]uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]uint64{}
	for id, n := range f.stored {
		if strings.HasPrefix(id, prefix) && n > 0 {
			out[id] = n
		}
	}
	return out, nil
}

func (f *fakeAPI) Close() error { return nil }
