package ingest

import (
	"encoding/json"
	"testing"
	"unicode/utf8"
)

// FuzzDecodeProgress: whatever POST /v1/progress accepts is valid JSON and
// one progress event that keeps the documented rules (the caller's own
// user unless a service names one, a position within a known duration, a
// ts within the accepted window, ids and strings within their limits), and
// survives the Kafka record round trip unchanged. The seed corpus is in
// testdata/fuzz/FuzzDecodeProgress besides these.
func FuzzDecodeProgress(f *testing.F) {
	for _, s := range []string{
		`{"biz":"audio","item_id":123,"position_ms":61000,"duration_ms":1800000,"ts":1763800000123,"device":"ios-7f3a","event_id":"e"}`,
		`{"type":"progress","biz":"live","item_id":1,"position_ms":5,"ts":1763800000000}`,
		`{"biz":"video","item_id":9,"position_ms":0,"duration_ms":0,"ts":1763800000000,"user_id":42,"extra":{"a":[1,null]}}`,
		`{"biz":"radio","item_id":9223372036854775807,"position_ms":9223372036854775807,"ts":1763800000000,"device":null}`,
		`{"biz":"audio","item_id":1,"position_ms":2,"duration_ms":1,"ts":1763800000000}`,
		`{"biz":"audio","item_id":1.0,"position_ms":2,"ts":1763800000000}`,
		`{"type":"play","biz":"audio","item_id":1,"position_ms":2,"ts":1763800000000}`,
		` {"biz":"comic","item_id":1,"position_ms":1,"ts":1763800300000} `, `{}`, `[]`, `{"ts":`,
	} {
		f.Add([]byte(s), false)
	}
	f.Add([]byte(`{"biz":"article","item_id":3,"position_ms":1,"ts":1763800000000,"user_id":7}`), true)
	f.Fuzz(func(t *testing.T, body []byte, service bool) {
		c := Caller{UserID: 42, Service: service}
		e, err := DecodeProgress(body, c, testNow)
		if err != nil {
			if e != (Event{}) {
				t.Fatalf("event %+v returned with error %v", e, err)
			}
			return
		}
		if !json.Valid(body) {
			t.Fatalf("accepted invalid JSON %q", body)
		}
		switch {
		case e.Type != TypeProgress:
			t.Fatalf("accepted a %v event", e.Type)
		case e.UserID == 0 || (!service && e.UserID != 42):
			t.Fatalf("accepted user %d for caller %+v", e.UserID, c)
		case e.ItemID == 0 || e.ItemID > 1<<63-1 || e.Biz < BizAudio || e.Biz > BizRadio:
			t.Fatalf("accepted item %v:%d", e.Biz, e.ItemID)
		case e.DurationMs > 0 && e.PositionMs > e.DurationMs:
			t.Fatalf("accepted position %d beyond duration %d", e.PositionMs, e.DurationMs)
		case e.TS > testNow.Add(maxFuture).UnixMilli() || e.TS < testNow.Add(-maxAge).UnixMilli():
			t.Fatalf("accepted ts %d outside the window around %d", e.TS, testNow.UnixMilli())
		case len(e.Device) > maxIDLen || len(e.EventID) > maxIDLen || !utf8.ValidString(e.Device) || !utf8.ValidString(e.EventID):
			t.Fatalf("accepted device %q / event_id %q", e.Device, e.EventID)
		}
		var again Event
		if err := DecodeRecord(AppendRecord(nil, &e), &again); err != nil || again != e {
			t.Fatalf("record round trip of %+v gives %+v, %v", e, again, err)
		}
	})
}
