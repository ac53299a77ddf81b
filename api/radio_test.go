package api

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/onair/onair/recommend"
)

// TestPlaylistJSON: the hand-written encoding equals encoding/json's.
func TestPlaylistJSON(t *testing.T) {
	t.Parallel()
	name := `morning "news" <&>`
	loc, _ := time.LoadLocation("Asia/Shanghai")
	f := func(r recommend.Result) {
		t.Helper()
		want, err := json.Marshal(&r)
		if err != nil {
			t.Fatal(err)
		}
		got := appendPlaylistJSON(nil, &r)
		if string(got) != string(want)+"\n" {
			t.Fatalf("got  %s\nwant %s", got, want)
		}
	}
	f(recommend.Result{StationID: 3, Items: []recommend.Entry{}})
	f(recommend.Result{StationID: 3, Daypart: &name, StartsAt: time.Date(2026, 11, 23, 6, 0, 0, 0, loc), EndsAt: time.Date(2026, 11, 23, 10, 0, 0, 5, loc),
		Items: []recommend.Entry{{ItemID: 1, Slot: "program", Reason: "tag:tech", At: 1763800000000}, {ItemID: 2, Slot: "personal", Reason: "personal: affinity tag:日本", At: 5}}})
}

// fakeRadio is the Radio of the handler tests: recommend's own validation
// and builder (pure functions) over an in-memory catalog and stations, so
// the replies have the real shapes (reasons, relaxed rules) without Kafka
// or Redis. Listeners get the public list.
type fakeRadio struct {
	mu       sync.Mutex
	items    map[uint64]*recommend.Item
	stations map[uint64]*recommend.Station
}

func newFakeRadio() *fakeRadio {
	return &fakeRadio{items: map[uint64]*recommend.Item{}, stations: map[uint64]*recommend.Station{}}
}

func (f *fakeRadio) PutItems(_ context.Context, items []recommend.Item) error {
	if err := recommend.ValidateItems(items); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range items {
		f.items[items[i].ItemID] = &items[i]
	}
	return nil
}

func (f *fakeRadio) PutStation(_ context.Context, st *recommend.Station) error {
	if err := st.Prepare(); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stations[st.ID] = st
	return nil
}

func (f *fakeRadio) Station(id uint64) (*recommend.Station, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st, ok := f.stations[id]
	return st, ok
}

func (f *fakeRadio) Stations() []*recommend.Station {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*recommend.Station
	for _, st := range f.stations {
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b *recommend.Station) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

func (f *fakeRadio) Playlist(ctx context.Context, station, listener uint64, at time.Time, limit int) (recommend.Result, error) {
	p, err := f.Preview(ctx, station, listener, at, limit)
	return p.Result, err
}

func (f *fakeRadio) Preview(_ context.Context, station, _ uint64, at time.Time, limit int) (recommend.Preview, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st, ok := f.stations[station]
	if !ok {
		return recommend.Preview{}, recommend.ErrNoStation
	}
	p := recommend.Preview{Result: recommend.Result{StationID: station, Items: []recommend.Entry{}}, Relaxed: []recommend.Relaxed{}}
	w, ok := st.WindowAt(at)
	if !ok {
		return p, nil
	}
	pl := recommend.Build(recommend.NewSnapshot(1, maps.Clone(f.items)), st, w)
	p.Daypart, p.StartsAt, p.EndsAt = &w.Name, w.Start, w.End
	p.Items = pl.Entries[:min(limit, len(pl.Entries))]
	p.Relaxed = append(p.Relaxed, pl.Relaxed...)
	return p, nil
}

// newRadioEnv is a test server with the radio routes over a fakeRadio
// holding the demo catalog and stations (loaded through the API).
func newRadioEnv(t *testing.T) (*env, string, string) {
	e := newEnv(t, nil)
	MountRadio(e.s, newFakeRadio())
	admin, user := token(t, 1, RoleAdmin), token(t, 42, "")
	body, _ := json.Marshal(map[string]any{"items": recommend.DemoCatalog()})
	if r := e.do("PUT", "/v1/admin/catalog", admin, bytes.NewReader(body)); r.status != 200 || r.body != `{"accepted":240}` {
		t.Fatalf("PUT catalog: %d %s", r.status, r.body)
	}
	for _, st := range recommend.DemoStations() {
		body, _ := json.Marshal(st)
		if r := e.do("PUT", "/v1/admin/stations/"+u(st.ID), admin, bytes.NewReader(body)); r.status != 200 {
			t.Fatalf("PUT station %d: %d %s", st.ID, r.status, r.body)
		}
	}
	return e, admin, user
}

// TestRadioRoutes: every radio route answers what the OpenAPI document
// says (the env's client checks each exchange), with the demo data.
func TestRadioRoutes(t *testing.T) {
	t.Parallel()
	e, admin, user := newRadioEnv(t)
	var st recommend.Station
	r := e.get("/v1/admin/stations/1", admin)
	if err := json.Unmarshal([]byte(r.body), &st); r.status != 200 || err != nil || st.ID != 1 || len(st.Dayparts) != 5 {
		t.Fatalf("GET station 1: %d %s", r.status, r.body)
	}
	wantError(t, e.get("/v1/admin/stations/9", admin), 404, "not_found", "")
	if r := e.get("/v1/stations", user); r.status != 200 || !strings.Contains(r.body, `{"id":2,"name":"onair Talk","timezone":"Europe/Berlin"}`) {
		t.Fatalf("GET /v1/stations: %d %s", r.status, r.body)
	}
	var pl recommend.Result
	r = e.get("/v1/stations/1/playlist?limit=20", user)
	if err := json.Unmarshal([]byte(r.body), &pl); r.status != 200 || err != nil || len(pl.Items) != 20 || pl.Daypart == nil || pl.Items[0].Reason == "" {
		t.Fatalf("GET playlist: %d %s", r.status, r.body)
	}
	wantError(t, e.get("/v1/stations/9/playlist", user), 404, "not_found", "")
	// New Year's Day 08:00 in Shanghai: the holiday clock, whose promo
	// slot hits its cap, so some rule gives way.
	var pv recommend.Preview
	r = e.get("/v1/admin/stations/1/preview?at=2027-01-01T08:00:00%2B08:00&listener=42&limit=100", admin)
	if err := json.Unmarshal([]byte(r.body), &pv); r.status != 200 || err != nil || *pv.Daypart != "holiday" || len(pv.Relaxed) == 0 {
		t.Fatalf("GET preview: %d %s", r.status, r.body)
	}
	if n := e.api.Exchanges(); n != 9 {
		t.Fatalf("the checker saw %d exchanges, want 9", n)
	}
}

// TestRadioRefusals: bad input is a 4xx naming the field (every malformed
// query parameter, path id and body field), and admin routes need the
// admin role.
func TestRadioRefusals(t *testing.T) {
	t.Parallel()
	e, admin, user := newRadioEnv(t)
	for _, c := range []struct{ path, field string }{
		{"/v1/stations/1/playlist?limit=abc", "limit"},
		{"/v1/stations/1/playlist?limit=0", "limit"},
		{"/v1/stations/1/playlist?limit=101", "limit"},
		{"/v1/stations/x/playlist", "id"},
		{"/v1/stations/0/playlist", "id"},
		{"/v1/stations/9223372036854775808/playlist", "id"},
		{"/v1/admin/stations/1/preview?limit=-1", "limit"},
		{"/v1/admin/stations/1/preview?at=tomorrow", "at"},
		{"/v1/admin/stations/1/preview?at=2027-01-01T08:00:00", "at"},
		{"/v1/admin/stations/1/preview?listener=-1", "listener"},
		{"/v1/admin/stations/1/preview?listener=0", "listener"},
		{"/v1/admin/stations/1/preview?listener=bob", "listener"},
		{"/v1/admin/stations/1/preview?listener=9223372036854775808", "listener"},
		{"/v1/admin/stations/18446744073709551615", "id"},
	} {
		wantError(t, e.get(c.path, admin), 400, "invalid_argument", c.field)
	}
	put := func(path, tok, body string) reply {
		t.Helper()
		return e.do("PUT", path, tok, strings.NewReader(body))
	}
	item := `{"item_id":1,"album_id":1,"biz":"audio","status":"online"`
	for _, c := range []struct{ body, field string }{
		{`{"items":[]}`, "items"},
		{`{"items":[` + item + `,"status":"gone"}]}`, "items[0].status"},
		{`{"items":[` + item + `,"item_id":9223372036854775808}]}`, "items[0].item_id"},
		{`{"items":[` + item + `,"tags":["a",""]}]}`, "items[0].tags[1]"},
		{`{"items":[` + item + `,"album_id":"1"}]}`, "items.album_id"},
	} {
		wantError(t, put("/v1/admin/catalog", admin, c.body), 400, "invalid_argument", c.field)
	}
	part := `{"name":"p","days":["mon"],"start":"06:00","end":"10:00","rounds":[{"slots":[{"type":"program","count":1}]}]}`
	for _, c := range []struct{ body, field string }{
		{`{"name":"s","timezone":"Mars/Olympus","dayparts":[` + part + `]}`, "timezone"},
		{`{"name":"s","timezone":"UTC","dayparts":[` + strings.Replace(part, `"mon"`, `"MON"`, 1) + `]}`, "dayparts[0].days[0]"},
		{`{"name":"s","timezone":"UTC","dayparts":[` + strings.Replace(part, `"06:00"`, `"25:00"`, 1) + `]}`, "dayparts[0].start"},
		{`{"name":"s","timezone":"UTC","dayparts":[` + part + `,` + part + `]}`, "dayparts[1]"},
		{`{"name":"s","timezone":"UTC","separation":{"album":1,"artist":1},"dayparts":[` + part + `]}`, "separation.window"},
	} {
		wantError(t, put("/v1/admin/stations/3", admin, c.body), 400, "invalid_argument", c.field)
	}
	wantError(t, put("/v1/admin/catalog", user, `{"items":[]}`), 403, "permission_denied", "")
	wantError(t, put("/v1/admin/stations/3", user, `{}`), 403, "permission_denied", "")
	wantError(t, e.get("/v1/admin/stations/1/preview", user), 403, "permission_denied", "")
	wantError(t, e.get("/v1/stations", ""), 401, "unauthenticated", "")
	wantError(t, put("/v1/admin/catalog", admin, `{"items":[`+strings.Repeat(item+`},`, 1<<15)+item+`}]}`), 413, "payload_too_large", "")
}
