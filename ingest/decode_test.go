package ingest

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/onair/onair/internal/refusal"
	"time"
)

// testNow is the server clock in decode tests; testTS is 10 s before it.
var testNow = time.UnixMilli(1763800010000)

const testTS = 1763800000000

var testUser = Caller{UserID: 42}

func TestDecodeBatchExample(t *testing.T) {
	// The example of api.md, with fields that do not apply to a type
	// (biz on a gift, station_id on a like) and unknown fields added.
	body := `{"events": [
  {"type": "progress", "biz": "video", "item_id": 9, "position_ms": 5000, "duration_ms": 60000, "ts": 1763800000000, "device": "ios-7f3a"},
  {"type": "play",  "biz": "radio", "item_id": 77, "station_id": 3, "listened_ms": 30000, "ts": 1763800000000, "device": "ios-7f3a"},
  {"type": "skip",  "biz": "radio", "item_id": 78, "station_id": 3, "ts": 1763800001000},
  {"type": "like",  "biz": "audio", "item_id": 123, "ts": 1763800002000, "station_id": 4, "extra": {"a": [1, {"b": null}]}},
  {"type": "gift",  "room_id": 5, "anchor_id": 8, "gift_id": 2, "value": 200, "ts": 1763800003000, "biz": "live", "user_id": 42},
  {"type": "danmaku", "room_id": 5, "text": "hello \u4e16\u754c \ud83d\ude00", "ts": 1763800004000, "event_id": "e-1", "item_id": null}
], "client": "ios 7.1"}`
	got, err := DecodeBatch([]byte(body), testUser, testNow)
	if err != nil {
		t.Fatal(err)
	}
	want := []Event{
		{Type: TypeProgress, UserID: 42, Biz: BizVideo, ItemID: 9, PositionMs: 5000, DurationMs: 60000, TS: testTS, Device: "ios-7f3a"},
		{Type: TypePlay, UserID: 42, Biz: BizRadio, ItemID: 77, StationID: 3, ListenedMs: 30000, TS: testTS, Device: "ios-7f3a"},
		{Type: TypeSkip, UserID: 42, Biz: BizRadio, ItemID: 78, StationID: 3, TS: testTS + 1000},
		{Type: TypeLike, UserID: 42, Biz: BizAudio, ItemID: 123, TS: testTS + 2000},
		{Type: TypeGift, UserID: 42, RoomID: 5, AnchorID: 8, GiftID: 2, Value: 200, TS: testTS + 3000},
		{Type: TypeDanmaku, UserID: 42, RoomID: 5, Text: "hello 世界 😀", TS: testTS + 4000, EventID: "e-1"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got\n%+v\nwant\n%+v", got, want)
	}
}

func TestDecodeBatchInvalid(t *testing.T) {
	// f checks that a batch holding the one event ev fails on wantField of
	// events[0] (or on wantField itself when it does not start with '.').
	f := func(ev, wantField string) {
		t.Helper()
		body := `{"events":[` + ev + `]}`
		evs, err := DecodeBatch([]byte(body), testUser, testNow)
		ve, ok := refusal.As(err)
		if !ok || ve.Kind != refusal.Invalid {
			t.Fatalf("%s: got %v, %v; want an Invalid refusal", ev, evs, err)
		}
		if !strings.HasPrefix(wantField, "events") {
			wantField = "events[0]." + wantField
		}
		if len(ve.Details) != 1 || ve.Details[0].Field != wantField {
			t.Fatalf("%s: got %+v, want one error on %q", ev, ve.Details, wantField)
		}
		if ve.Details[0].Message == "" {
			t.Fatalf("%s: empty message", ev)
		}
	}
	ok := func(ev string) {
		t.Helper()
		if _, err := DecodeBatch([]byte(`{"events":[`+ev+`]}`), testUser, testNow); err != nil {
			t.Fatalf("%s: %v", ev, err)
		}
	}
	const ts = `"ts":1763800000000`
	like := func(extra string) string { return `{"type":"like","biz":"audio","item_id":1,` + ts + extra + `}` }

	// type
	f(`{"biz":"audio","item_id":1,`+ts+`}`, "type")
	f(`{"type":"view","biz":"audio","item_id":1,`+ts+`}`, "type")
	f(`{"type":"Like","biz":"audio","item_id":1,`+ts+`}`, "type")
	f(`{"type":4,"biz":"audio","item_id":1,`+ts+`}`, "type")
	f(`{"item_id":-1,"type":"bogus"}`, "type") // type wins over other errors
	f(`[]`, "events[0]")
	f(`"like"`, "events[0]")
	f(`null`, "events[0]")

	// biz
	ok(like(""))
	for _, typ := range []string{"progress", "play", "skip", "like"} {
		f(`{"type":"`+typ+`","item_id":1,"position_ms":0,"listened_ms":0,`+ts+`}`, "biz")
	}
	f(`{"type":"like","biz":"tv","item_id":1,`+ts+`}`, "biz")
	f(`{"type":"like","biz":"","item_id":1,`+ts+`}`, "biz")
	f(`{"type":"like","biz":1,"item_id":1,`+ts+`}`, "biz")
	for _, biz := range []string{"audio", "video", "live", "article", "comic", "radio"} {
		ok(`{"type":"like","biz":"` + biz + `","item_id":1,` + ts + `}`)
	}

	// ids
	for _, bad := range []string{`0`, `-1`, `-0`, `1.5`, `1.0`, `1e3`, `"9"`, `true`, `[1]`, `{}`,
		`9223372036854775808`, `18446744073709551616`, `99999999999999999999999`} {
		f(`{"type":"like","biz":"audio","item_id":`+bad+`,`+ts+`}`, "item_id")
		f(like(`,"user_id":`+bad), "user_id")
		f(`{"type":"play","biz":"radio","item_id":1,"listened_ms":0,"station_id":`+bad+`,`+ts+`}`, "station_id")
		f(`{"type":"gift","room_id":`+bad+`,"anchor_id":1,"gift_id":1,"value":1,`+ts+`}`, "room_id")
		f(`{"type":"gift","room_id":1,"anchor_id":`+bad+`,"gift_id":1,"value":1,`+ts+`}`, "anchor_id")
		f(`{"type":"gift","room_id":1,"anchor_id":1,"gift_id":`+bad+`,"value":1,`+ts+`}`, "gift_id")
		f(`{"type":"gift","room_id":1,"anchor_id":1,"gift_id":1,"value":`+bad+`,`+ts+`}`, "value")
	}
	ok(`{"type":"like","biz":"audio","item_id":9223372036854775807,` + ts + `}`)

	// ts
	f(`{"type":"like","biz":"audio","item_id":1}`, "ts")
	f(like(`,"ts":"1763800000000"`), "ts")
	f(`{"type":"like","biz":"audio","item_id":1,"ts":1763800000000.5}`, "ts")
	f(`{"type":"like","biz":"audio","item_id":1,"ts":1763800000}`, "ts") // seconds, not ms: too old
	f(fmt.Sprintf(`{"type":"like","biz":"audio","item_id":1,"ts":%d}`, testNow.Add(5*time.Minute).UnixMilli()+1), "ts")
	f(fmt.Sprintf(`{"type":"like","biz":"audio","item_id":1,"ts":%d}`, testNow.Add(-30*24*time.Hour).UnixMilli()-1), "ts")
	f(`{"type":"like","biz":"audio","item_id":1,"ts":-9223372036854775809}`, "ts")
	ok(fmt.Sprintf(`{"type":"like","biz":"audio","item_id":1,"ts":%d}`, testNow.Add(5*time.Minute).UnixMilli()))
	ok(fmt.Sprintf(`{"type":"like","biz":"audio","item_id":1,"ts":%d}`, testNow.Add(-30*24*time.Hour).UnixMilli()))

	// progress
	f(`{"type":"progress","biz":"audio","position_ms":1,`+ts+`}`, "item_id")
	f(`{"type":"progress","biz":"audio","item_id":1,`+ts+`}`, "position_ms")
	f(`{"type":"progress","biz":"audio","item_id":1,"position_ms":-1,`+ts+`}`, "position_ms")
	f(`{"type":"progress","biz":"audio","item_id":1,"position_ms":0.5,`+ts+`}`, "position_ms")
	f(`{"type":"progress","biz":"audio","item_id":1,"position_ms":11,"duration_ms":10,`+ts+`}`, "position_ms")
	f(`{"type":"progress","biz":"audio","item_id":1,"position_ms":1,"duration_ms":-10,`+ts+`}`, "duration_ms")
	ok(`{"type":"progress","biz":"audio","item_id":1,"position_ms":0,` + ts + `}`)
	ok(`{"type":"progress","biz":"audio","item_id":1,"position_ms":10,"duration_ms":10,` + ts + `}`)
	ok(`{"type":"progress","biz":"live","item_id":1,"position_ms":99,"duration_ms":0,` + ts + `}`)

	// play, skip, like
	f(`{"type":"play","biz":"audio","listened_ms":1,`+ts+`}`, "item_id")
	f(`{"type":"play","biz":"audio","item_id":1,`+ts+`}`, "listened_ms")
	f(`{"type":"play","biz":"audio","item_id":1,"listened_ms":-5,`+ts+`}`, "listened_ms")
	ok(`{"type":"play","biz":"audio","item_id":1,"listened_ms":0,` + ts + `}`)
	f(`{"type":"skip","biz":"radio",`+ts+`}`, "item_id")
	f(`{"type":"like","biz":"radio",`+ts+`}`, "item_id")

	// gift
	f(`{"type":"gift","anchor_id":1,"gift_id":1,"value":1,`+ts+`}`, "room_id")
	f(`{"type":"gift","room_id":1,"gift_id":1,"value":1,`+ts+`}`, "anchor_id")
	f(`{"type":"gift","room_id":1,"anchor_id":1,"value":1,`+ts+`}`, "gift_id")
	f(`{"type":"gift","room_id":1,"anchor_id":1,"gift_id":1,`+ts+`}`, "value")
	f(`{"type":"gift","room_id":1,"anchor_id":1,"gift_id":1,"value":1}`, "ts")
	ok(`{"type":"gift","room_id":1,"anchor_id":1,"gift_id":1,"value":1,` + ts + `}`)

	// danmaku
	dm := func(text string) string { return `{"type":"danmaku","room_id":5,"text":` + text + `,` + ts + `}` }
	f(`{"type":"danmaku","text":"hi",`+ts+`}`, "room_id")
	f(`{"type":"danmaku","room_id":5,`+ts+`}`, "text")
	f(dm(`""`), "text")
	f(dm(`5`), "text")
	f(dm(`"`+strings.Repeat("x", 501)+`"`), "text")
	f(dm(`"`+strings.Repeat("\\u00e9", 251)+`"`), "text") // 502 bytes once decoded
	f(dm("\"bad \xff byte\""), "text")
	f(dm(`"lone \ud800 surrogate"`), "text")
	f(dm(`"reversed \udc00\ud800 pair"`), "text")
	ok(dm(`"` + strings.Repeat("x", 500) + `"`))
	ok(dm(`"` + strings.Repeat("世", 166) + `xx"`))
	ok(dm(`"esc \" \\ \/ \b \f \n \r \t \u0041 \ud83d\ude00"`))

	// event_id, device
	f(like(`,"event_id":"`+strings.Repeat("e", 65)+`"`), "event_id")
	f(like(`,"event_id":7`), "event_id")
	f(like(",\"event_id\":\"\xc3\""), "event_id")
	f(like(`,"device":"`+strings.Repeat("d", 65)+`"`), "device")
	ok(like(`,"event_id":"` + strings.Repeat("e", 64) + `","device":"` + strings.Repeat("d", 64) + `"`))
	ok(like(`,"event_id":""`))

	// unknown fields and nulls
	ok(like(`,"new_field":{"deep":[1,2,{"x":"y"}],"z":null},"flag":true,"n":-1.5e3`))
	ok(like(`,"device":null,"event_id":null,"position_ms":null`))
	f(`{"type":"like","biz":"audio","item_id":null,`+ts+`}`, "item_id")
}

func TestDecodeBatchEvents(t *testing.T) {
	f := func(body, wantField string) {
		t.Helper()
		evs, err := DecodeBatch([]byte(body), testUser, testNow)
		ve, ok := refusal.As(err)
		if !ok || ve.Kind != refusal.Invalid {
			t.Fatalf("%s: got %v, %v; want an Invalid refusal", body, evs, err)
		}
		if len(ve.Details) != 1 || ve.Details[0].Field != wantField {
			t.Fatalf("%s: got %+v, want one error on %q", body, ve.Details, wantField)
		}
	}
	f(`{}`, "events")
	f(`{"events":[]}`, "events")
	f(`{"events":null}`, "events")
	f(`{"events":{}}`, "events")
	f(`{"events":"x"}`, "events")
	f(`{"events":[],"events":[]}`, "events")
	f(`{"events":"x","events":[{"type":"like","biz":"audio","item_id":1,"ts":1763800000000}]}`, "events")
	f(`{"events":null,"events":[{"type":"like","biz":"audio","item_id":1,"ts":1763800000000}]}`, "events")
	// Unknown values nested too deep to skip safely.
	f(`{"events":[{"x":`+strings.Repeat("[", 70)+strings.Repeat("]", 70)+`}]}`, "")
	// Malformed JSON: one error for the body, with the byte offset.
	for _, body := range []string{``, ` `, `[]`, `{"events":[}`, `{"events":[{"type":"like",}]}`, `{"events":[]`,
		`{"events":[]} x`, `{"events":[{"type":"like" "biz":"audio"}]}`, `{"events":[{"ts":01}]}`, `{"events":[{"ts":1.}]}`,
		`{"events":[{"ts":-}]}`, `{"events":[{"text":"\x"}]}`, `{"events":[{"text":"\u12"}]}`, "{\"events\":[{\"text\":\"a\nb\"}]}",
		`{"events":[{"x":tru}]}`, `{"events":[{"x":nul}]}`, `{"events":[{"x":[1,]}]}`, `{"events":[{"x":{"a"}}]}`, `{'events':[]}`} {
		f(body, "")
		_, err := DecodeBatch([]byte(body), testUser, testNow)
		if !strings.Contains(err.Error(), "byte offset") {
			t.Fatalf("%s: %v does not name the byte offset", body, err)
		}
	}
	_, err := DecodeBatch([]byte(`{"events":[{"type":"like",}]}`), testUser, testNow)
	if !strings.Contains(err.Error(), "invalid JSON at byte offset 26") {
		t.Fatalf("got %v", err)
	}
}

func TestDecodeBatchManyErrors(t *testing.T) {
	good := `{"type":"like","biz":"audio","item_id":1,"ts":1763800000000}`
	body := `{"events":[` + good + `,
		{"type":"like","biz":"audio","item_id":0,"ts":0},
		` + good + `,
		{"type":"gift","room_id":1,"ts":1763800000000},
		7,
		{"type":"like","biz":"audio","item_id":1,"ts":"x"}]}`
	_, err := DecodeBatch([]byte(body), testUser, testNow)
	ve, ok := refusal.As(err)
	if !ok {
		t.Fatal(err)
	}
	var got []string
	for _, fe := range ve.Details {
		got = append(got, fe.Field)
	}
	want := []string{"events[1].item_id", "events[3].anchor_id", "events[4]", "events[5].ts"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q, want %q (%v)", got, want, err)
	}
}

func TestDecodeBatchLimits(t *testing.T) {
	ev := `{"type":"like","biz":"audio","item_id":1,"ts":1763800000000}`
	batch := func(n int) []byte {
		return []byte(`{"events":[` + strings.TrimSuffix(strings.Repeat(ev+",", n), ",") + `]}`)
	}
	evs, err := DecodeBatch(batch(MaxBatchEvents), testUser, testNow)
	if err != nil || len(evs) != MaxBatchEvents {
		t.Fatalf("1000 events: %d, %v", len(evs), err)
	}
	if _, err := DecodeBatch(batch(MaxBatchEvents+1), testUser, testNow); !errors.Is(err, ErrTooManyEvents) {
		t.Fatalf("1001 events: %v", err)
	}
	big := append([]byte(`{"events":[`+ev+`],"pad":"`), strings.Repeat("x", MaxBodyBytes)...)
	big = append(big, `"}`...)
	if _, err := DecodeBatch(big, testUser, testNow); !errors.Is(err, ErrBodyTooLarge) {
		t.Fatalf("big body: %v", err)
	}
	if _, err := DecodeProgress(big, testUser, testNow); !errors.Is(err, ErrBodyTooLarge) {
		t.Fatalf("big body: %v", err)
	}
}

func TestDecodeUserID(t *testing.T) {
	const ev = `{"type":"like","biz":"audio","item_id":1,"ts":1763800000000%s}`
	batch := func(extra ...string) []byte {
		var parts []string
		for _, e := range extra {
			parts = append(parts, fmt.Sprintf(ev, e))
		}
		return []byte(`{"events":[` + strings.Join(parts, ",") + `]}`)
	}
	// A user token: own id or none.
	evs, err := DecodeBatch(batch(``, `,"user_id":42`), testUser, testNow)
	if err != nil || evs[0].UserID != 42 || evs[1].UserID != 42 {
		t.Fatalf("%+v %v", evs, err)
	}
	// Another user's id: 403, and it wins over 400s elsewhere in the batch.
	_, err = DecodeBatch(batch(`,"ts":"x"`, `,"user_id":43`, `,"user_id":44`), testUser, testNow)
	fe, ok := refusal.As(err)
	if !ok || fe.Kind != refusal.Forbidden || fe.Field != "events[1].user_id" || fe.Message != "user 42 may not post events for user 43" {
		t.Fatalf("got %#v", err)
	}
	_, err = DecodeProgress([]byte(`{"biz":"audio","item_id":1,"position_ms":1,"ts":1763800000000,"user_id":7}`), testUser, testNow)
	if fe, ok := refusal.As(err); !ok || fe.Kind != refusal.Forbidden || fe.Field != "user_id" {
		t.Fatalf("got %#v", err)
	}
	// A service: any user, but it must say which.
	svc := Caller{UserID: 1, Service: true}
	evs, err = DecodeBatch(batch(`,"user_id":43`, `,"user_id":44`), svc, testNow)
	if err != nil || evs[0].UserID != 43 || evs[1].UserID != 44 {
		t.Fatalf("%+v %v", evs, err)
	}
	_, err = DecodeBatch(batch(`,"user_id":43`, ``), svc, testNow)
	if ve, ok := refusal.As(err); !ok || ve.Details[0].Field != "events[1].user_id" {
		t.Fatalf("got %v", err)
	}
	// A caller without identity is a wiring bug, not a client error.
	if _, err := DecodeBatch(batch(``), Caller{}, testNow); err == nil || errors.As(err, new(*refusal.Error)) {
		t.Fatalf("got %v", err)
	}
}

func TestDecodeProgress(t *testing.T) {
	body := `{"biz": "audio", "item_id": 123, "position_ms": 61000, "duration_ms": 1800000,
 "ts": 1763800000123, "device": "ios-7f3a", "event_id": "optional-client-uuid"}`
	got, err := DecodeProgress([]byte(body), testUser, testNow)
	want := Event{Type: TypeProgress, UserID: 42, Biz: BizAudio, ItemID: 123, PositionMs: 61000, DurationMs: 1800000,
		TS: 1763800000123, Device: "ios-7f3a", EventID: "optional-client-uuid"}
	if err != nil || got != want {
		t.Fatalf("got %+v, %v", got, err)
	}
	f := func(body, wantField string) {
		t.Helper()
		_, err := DecodeProgress([]byte(body), testUser, testNow)
		ve, ok := refusal.As(err)
		if !ok || len(ve.Details) != 1 || ve.Details[0].Field != wantField {
			t.Fatalf("%s: got %v, want an error on %q", body, err, wantField)
		}
	}
	f(`{"item_id":1,"position_ms":1,"ts":1763800000000}`, "biz")
	f(`{"biz":"audio","position_ms":1,"ts":1763800000000}`, "item_id")
	f(`{"biz":"audio","item_id":1,"ts":1763800000000}`, "position_ms")
	f(`{"biz":"audio","item_id":1,"position_ms":1}`, "ts")
	f(`{"type":"play","biz":"audio","item_id":1,"position_ms":1,"ts":1763800000000}`, "type")
	f(`{"biz":"audio","item_id":1,"position_ms":1,"ts":1763800000000`, "")
	f(`[]`, "")
	f(`{"biz":"audio","item_id":1,"position_ms":1,"ts":1763800000000}{}`, "")
	if _, err := DecodeProgress([]byte(`{"type":"progress","biz":"audio","item_id":1,"position_ms":1,"ts":1763800000000}`), testUser, testNow); err != nil {
		t.Fatal(err)
	}
}

// TestDecodeAgreesWithEncodingJSON checks the hand-written scanner against
// encoding/json on the strings it unescapes.
func TestDecodeAgreesWithEncodingJSON(t *testing.T) {
	for _, s := range []string{"plain", "é世😀", "a\"b\\c/d\b\f\n\r\t", "\u2028\u2029", "<>&", "\x7f"} {
		j, _ := json.Marshal(s)
		body := `{"events":[{"type":"danmaku","room_id":1,"ts":1763800000000,"text":` + string(j) + `}]}`
		evs, err := DecodeBatch([]byte(body), testUser, testNow)
		if err != nil || evs[0].Text != s {
			t.Fatalf("%q: got %+v, %v", s, evs, err)
		}
	}
}

func FuzzDecodeBatch(f *testing.F) {
	for _, s := range []string{
		`{"events":[{"type":"progress","biz":"video","item_id":9,"position_ms":5000,"duration_ms":60000,"ts":1763800000000}]}`,
		`{"events":[{"type":"play","biz":"radio","item_id":77,"station_id":3,"listened_ms":30000,"ts":1763800000000,"device":"d"}]}`,
		`{"events":[{"type":"gift","room_id":5,"anchor_id":8,"gift_id":2,"value":200,"ts":1763800003000,"user_id":42}]}`,
		`{"events":[{"type":"danmaku","room_id":5,"text":"h\u00e9llo \ud83d\ude00","ts":1763800004000,"event_id":"x"}]}`,
		`{"events":[{"type":"like","biz":"audio","item_id":1,"ts":1763800000000,"x":[{"y":null},true,-1e5]}]}`,
		`{"events":[{"type":"skip","biz":"radio","item_id":1,"ts":1763800000000},{"type":"like"}]}`,
		`{"events":[]}`, `{"events":[{"ts":01}]}`, `{"events":[{"text":"\ud800"}]}`,
	} {
		f.Add([]byte(s), false)
	}
	f.Fuzz(func(t *testing.T, body []byte, service bool) {
		c := Caller{UserID: 42, Service: service}
		evs, err := DecodeBatch(body, c, testNow)
		if err != nil {
			if len(evs) != 0 {
				t.Fatalf("events returned with error %v", err)
			}
			return
		}
		if !json.Valid(body) {
			t.Fatalf("accepted invalid JSON %q", body)
		}
		if len(evs) == 0 || len(evs) > MaxBatchEvents {
			t.Fatalf("accepted %d events", len(evs))
		}
		var e Event
		for i := range evs {
			if evs[i].Type < TypeProgress || evs[i].Type > TypeDanmaku || evs[i].UserID == 0 || (!service && evs[i].UserID != 42) {
				t.Fatalf("event #%d accepted: %+v", i, evs[i])
			}
			rec := AppendRecord(nil, &evs[i])
			if err := DecodeRecord(rec, &e); err != nil {
				t.Fatalf("cannot decode event #%d (%d bytes): %v", i, len(rec), err)
			}
			if e != evs[i] {
				t.Fatalf("event #%d: record gives %+v, want %+v", i, e, evs[i])
			}
		}
	})
}

// benchBatch is a realistic 100-event request: mostly progress, some plays.
func benchBatch(n int) []byte {
	var sb strings.Builder
	sb.WriteString(`{"events":[`)
	for i := range n {
		if i > 0 {
			sb.WriteByte(',')
		}
		if i%4 == 3 {
			fmt.Fprintf(&sb, `{"type":"play","biz":"radio","item_id":%d,"station_id":3,"listened_ms":30000,"ts":%d,"device":"ios-7f3a"}`, 1000+i, testTS+int64(i))
		} else {
			fmt.Fprintf(&sb, `{"type":"progress","biz":"audio","item_id":%d,"position_ms":%d,"duration_ms":1800000,"ts":%d,"device":"ios-7f3a","event_id":"c0ffee-%06d"}`, 1000+i, 5000*i, testTS+int64(i), i)
		}
	}
	sb.WriteString(`]}`)
	return []byte(sb.String())
}

func BenchmarkDecodeBatch(b *testing.B) {
	body := benchBatch(100)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeBatch(body, testUser, testNow); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*100)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkDecodeBatchEncodingJSON is the baseline the hand-written
// decoder has to beat: encoding/json into a struct, without any of the
// validation.
func BenchmarkDecodeBatchEncodingJSON(b *testing.B) {
	type jsonEvent struct {
		Type       string `json:"type"`
		Biz        string `json:"biz"`
		ItemID     uint64 `json:"item_id"`
		PositionMs uint64 `json:"position_ms"`
		DurationMs uint64 `json:"duration_ms"`
		ListenedMs uint64 `json:"listened_ms"`
		StationID  uint64 `json:"station_id"`
		TS         int64  `json:"ts"`
		Device     string `json:"device"`
		EventID    string `json:"event_id"`
	}
	body := benchBatch(100)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		var v struct{ Events []jsonEvent }
		if err := json.Unmarshal(body, &v); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*100)/b.Elapsed().Seconds(), "events/s")
}
