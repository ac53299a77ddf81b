package ingest

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"
)

var recordCases = []Event{
	{},
	{Type: TypeProgress, UserID: 42, Biz: BizAudio, ItemID: 123, TS: 1763800000123, PositionMs: 61000, DurationMs: 1800000, EventID: "9x3kq0a1b2c3", Device: "ios-7f3a"},
	{Type: TypePlay, UserID: 1, Biz: BizRadio, ItemID: 77, StationID: 3, ListenedMs: 30000, TS: 1763800000000},
	{Type: TypeGift, UserID: math.MaxUint64, RoomID: 5, AnchorID: 8, GiftID: 2, Value: 200, TS: -1},
	{Type: TypeDanmaku, UserID: 9, RoomID: 5, Text: "hello 世界", TS: math.MinInt64},
	{Type: TypeLike, UserID: 9, Biz: BizComic, ItemID: 1, TS: math.MaxInt64, EventID: strings.Repeat("e", 64), Device: "d", Text: strings.Repeat("t", 500)},
	{Type: TypeSkip, UserID: 3, Biz: BizRadio, ItemID: 8, StationID: 1, TS: 1763800000000, EventID: "9x3kq0a1b2c4", ServerID: true},
	{ServerID: true},
	{Type: 200, Biz: 200}, // types from the future pass through
}

func TestRecordRoundTrip(t *testing.T) {
	for _, want := range recordCases {
		b := AppendRecord([]byte("prefix"), &want)
		if !bytes.HasPrefix(b, []byte("prefix")) || b[6] != RecordVersion {
			t.Fatalf("%+v: bad prefix or version: %x", want, b)
		}
		var got Event
		got.Text = "stale" // DecodeRecord overwrites all of e
		if err := DecodeRecord(b[6:], &got); err != nil {
			t.Fatalf("%+v: %v", want, err)
		}
		if got != want {
			t.Fatalf("got %+v, want %+v", got, want)
		}
	}
	// Size of a typical progress record, which DESIGN.md quotes.
	if n := len(AppendRecord(nil, &recordCases[1])); n > 45 {
		t.Fatalf("progress record is %d bytes", n)
	}
}

func TestDecodeRecordErrors(t *testing.T) {
	good := AppendRecord(nil, &recordCases[1])
	f := func(b []byte, want string) {
		t.Helper()
		var e Event
		e.UserID = 7
		err := DecodeRecord(b, &e)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("%x: got %v, want an error containing %q", b, err, want)
		}
		if e != (Event{}) {
			t.Fatalf("%x: e not zeroed: %+v", b, e)
		}
	}
	f(nil, "truncated record: 0 bytes")
	f([]byte{1, 1}, "truncated record: 2 bytes, header needs 5")
	f([]byte{2}, "unknown record version 2")
	f(append([]byte{9}, good[1:]...), "unknown record version 9")
	f([]byte{1, 1, 1, 0, 0x80}, "reserved presence bits")
	for n := recordHeader; n < len(good); n++ {
		f(good[:n], "")
	}
	f(append(good[:len(good):len(good)], 0), "1 trailing bytes")
	f([]byte{1, 1, 1, 1, 0, 0}, "zero value marked present")
	f([]byte{1, 1, 1, 1, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, "overflows")
	f([]byte{1, 1, 1, 0, 0x08, 5, 'a'}, "string 11 needs 5 bytes")

	var e Event
	if err := DecodeRecord([]byte{7, 0, 0, 0, 0}, &e); !errors.Is(err, ErrRecordVersion) {
		t.Fatalf("got %v", err)
	}
}

func TestRecordKey(t *testing.T) {
	if got := string(RecordKey(42)); got != "42" {
		t.Fatal(got)
	}
	if got := string(RecordKey(math.MaxUint64)); got != "18446744073709551615" {
		t.Fatal(got)
	}
}

func FuzzDecodeRecord(f *testing.F) {
	for i := range recordCases {
		f.Add(AppendRecord(nil, &recordCases[i]))
	}
	f.Add([]byte{1, 1, 1, 0xff, 0x3f})
	f.Fuzz(func(t *testing.T, b []byte) {
		var e Event
		if err := DecodeRecord(b, &e); err != nil {
			return
		}
		// Whatever decodes re-encodes to something that decodes the same.
		var again Event
		if err := DecodeRecord(AppendRecord(nil, &e), &again); err != nil || again != e {
			t.Fatalf("%x: %+v re-decodes to %+v, %v", b, e, again, err)
		}
	})
}

func BenchmarkAppendRecord(b *testing.B) {
	e := recordCases[1]
	buf := make([]byte, 0, 128)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendRecord(buf[:0], &e)
	}
	b.SetBytes(int64(len(buf)))
}

func BenchmarkDecodeRecord(b *testing.B) {
	rec := AppendRecord(nil, &recordCases[1])
	b.SetBytes(int64(len(rec)))
	b.ReportAllocs()
	var e Event
	for b.Loop() {
		if err := DecodeRecord(rec, &e); err != nil {
			b.Fatal(err)
		}
	}
}
