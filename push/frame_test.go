package push

import (
	"encoding/json"
	"fmt"
	"testing"
)

// FuzzParseFrame: parseFrame never panics, and an event frame it accepts
// is valid JSON that carries the record's offset as "seq".
func FuzzParseFrame(f *testing.F) {
	f.Add([]byte(`{"type":"danmaku","room_id":5,"user_id":42,"text":"hi","ts":1,"id":"e1"}`), int64(7))
	f.Add([]byte(`{"type":"gift","room_id":5,"id":"g","value":200}`), int64(0))
	f.Add([]byte(`{"type":"leaderboard","room_id":5,"version":3,"items":[]}`), int64(1))
	f.Add([]byte(`{"type":"danmaku"}  `), int64(1))
	f.Add([]byte(`{}`), int64(1))
	f.Fuzz(func(t *testing.T, v []byte, seq int64) {
		if seq < 0 {
			seq = -seq - 1
		}
		fr, err := parseFrame(v, seq)
		if err != nil || fr.class == classState {
			return
		}
		var got struct {
			Seq *int64 `json:"seq"`
		}
		if err := json.Unmarshal(fr.raw, &got); err != nil {
			t.Fatalf("frame %q with seq: %q is not JSON: %v", v, fr.raw, err)
		}
		if got.Seq == nil || *got.Seq != seq || fr.seq != seq {
			t.Fatalf("frame %q: seq %v in %q, want %d", v, got.Seq, fr.raw, seq)
		}
	})
}

// TestAppendBatchLevels: a level gets the classes at or above it, in order.
func TestAppendBatchLevels(t *testing.T) {
	frames := []frame{
		{class: classDanmaku, raw: []byte(`{"type":"danmaku"}`)},
		{class: classGift, raw: []byte(`{"type":"gift"}`)},
		{class: classState, raw: []byte(`{"type":"online"}`)},
	}
	f := func(l level, want string) {
		t.Helper()
		b, ok := appendBatch(nil, frames, l)
		if string(b) != want || !ok {
			t.Fatalf("level %d: %s, want %s", l, b, want)
		}
	}
	f(levelAll, `{"type":"batch","items":[{"type":"danmaku"},{"type":"gift"},{"type":"online"}]}`)
	f(levelNoDanmaku, `{"type":"batch","items":[{"type":"gift"},{"type":"online"}]}`)
	f(levelState, `{"type":"batch","items":[{"type":"online"}]}`)
	if _, ok := appendBatch(nil, frames[:1], levelState); ok {
		t.Fatal("a state-only connection got a batch of danmaku")
	}
}

// BenchmarkParseFrame is the per-record work for a room with viewers.
func BenchmarkParseFrame(b *testing.B) {
	v := []byte(`{"type":"danmaku","room_id":5,"user_id":42,"text":"hello everyone","ts":1763800004000,"id":"0h5k2j3l4"}`)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := parseFrame(v, int64(i)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAppendBatch encodes a tick of a busy room (20 danmaku).
func BenchmarkAppendBatch(b *testing.B) {
	var frames []frame
	for i := range 20 {
		fr, _ := parseFrame(fmt.Appendf(nil, `{"type":"danmaku","room_id":5,"user_id":42,"text":"message %d","ts":1,"id":"e%d"}`, i, i), int64(i))
		frames = append(frames, fr)
	}
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = appendBatch(buf[:0], frames, levelAll)
	}
}
