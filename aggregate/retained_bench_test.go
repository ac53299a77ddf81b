package aggregate

import (
	"runtime"
	"strconv"
	"testing"

	"github.com/onair/onair/ingest"
)

// BenchmarkRetainedBytesPerEntry measures what one history entry costs
// while a progress window holds it: its held state and its progress row
// (the two maps every written-back entry sits in until the window lands),
// with a device name and an event id as clients send them. The figure is
// DESIGN.md's bytes per entry ("The aggregator's memory bound").
func BenchmarkRetainedBytesPerEntry(b *testing.B) {
	const entries = 200_000
	var ms runtime.MemStats
	for b.Loop() {
		runtime.GC()
		runtime.ReadMemStats(&ms)
		before := ms.HeapAlloc
		p := newPartition(0, -1)
		for i := range entries {
			k := key{user: uint64(i / 100), biz: ingest.BizAudio, item: uint64(i)}
			s := &state{}
			s.add(report{ts: int64(i), positionMs: 1000, durationMs: 200_000, device: "ios-17.2-iphone15",
				eventID: "0190c2f4-" + strconv.Itoa(i)})
			joinState(p.held, k, s)
			p.progress[k] = progressRow{user: k.user, biz: k.biz, item: k.item, positionMs: 1000, durationMs: 200_000,
				device: s.touch.device, tsMs: int64(i), posTsMs: int64(i)}
		}
		runtime.GC()
		runtime.ReadMemStats(&ms)
		b.ReportMetric(float64(ms.HeapAlloc-before)/entries, "B/entry")
		runtime.KeepAlive(p)
	}
}
