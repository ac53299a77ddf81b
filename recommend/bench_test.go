package recommend

import (
	"fmt"
	"math/rand/v2"
	"syscall"
	"testing"
	"time"
)

// cpuTime is the process's user + system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchCatalog is n items over 20 categories and 50 tags.
func benchCatalog(n int) map[uint64]*Item {
	r := rand.New(rand.NewPCG(5, 6))
	items := make(map[uint64]*Item, n)
	for i := 1; i <= n; i++ {
		items[uint64(i)] = &Item{ItemID: uint64(i), Biz: "audio", AlbumID: uint64(1 + r.IntN(n/10)), ArtistID: uint64(1 + r.IntN(n/50)),
			Category: fmt.Sprintf("c%d", r.IntN(20)), Tags: []string{fmt.Sprintf("t%d", r.IntN(50)), fmt.Sprintf("t%d", r.IntN(50))},
			Region: []string{"bj", "sh", "gz"}[r.IntN(3)], Score: r.Float64() * 10, OnlineAt: 1_700_000_000_000 + int64(r.IntN(1e9)),
			DurationMs: int64(120_000 + r.IntN(600_000)), Status: StatusOnline}
	}
	return items
}

// benchStations are n stations of 4 dayparts each covering the day, with
// filters drawn from the catalog's categories and tags.
func benchStations(b *testing.B, n int) []*Station {
	r := rand.New(rand.NewPCG(7, 8))
	out := make([]*Station, n)
	slot := func(typ string) Slot {
		sl := Slot{Type: typ, Count: 1 + r.IntN(3), Filter: Filter{Categories: []string{fmt.Sprintf("c%d", r.IntN(20))}}}
		if r.IntN(3) == 0 {
			sl.Filter.Tags = []string{fmt.Sprintf("t%d", r.IntN(50))}
		}
		if typ == SlotPromo {
			sl.MaxPerHour = 2
		}
		return sl
	}
	for i := range out {
		var dps []Daypart
		for j, span := range [][2]string{{"06:00", "10:00"}, {"10:00", "18:00"}, {"18:00", "22:00"}, {"22:00", "06:00"}} {
			dps = append(dps, Daypart{Name: fmt.Sprint("d", j), Days: everyDay, Start: span[0], End: span[1],
				Rounds: []Round{{Slots: []Slot{slot(SlotPromo), slot(SlotProgram), slot(SlotPersonal), slot(SlotProgram)}}}})
		}
		st := &Station{ID: uint64(i + 1), Name: "b", Timezone: "Asia/Shanghai", Dayparts: dps}
		if err := st.Prepare(); err != nil {
			b.Fatal(err)
		}
		out[i] = st
	}
	return out
}

// BenchmarkRebuild500x4 is one full rebuild after a catalog change: index
// a 100 000-item snapshot, then build 500 stations × 4 dayparts (each up to
// DefaultMaxItems entries), one after another on one goroutine.
func BenchmarkRebuild500x4(b *testing.B) {
	items := benchCatalog(100_000)
	stations := benchStations(b, 500)
	day := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	b.ReportAllocs()
	// CPU time per rebuild too: on a shared machine the wall time says
	// more about the neighbours than about the code.
	cpu0 := cpuTime()
	b.ResetTimer()
	defer func() { b.ReportMetric((cpuTime()-cpu0).Seconds()/float64(b.N), "cpu-s/op") }()
	for i := 0; i < b.N; i++ {
		snap := NewSnapshot(uint64(i), items)
		lists := 0
		for _, st := range stations {
			for _, h := range []int{7, 12, 20, 23} {
				w, ok := st.WindowAt(day.Add(time.Duration(h-8) * time.Hour))
				if !ok {
					b.Fatal("no window")
				}
				if len(Build(snap, st, w).Entries) == 0 {
					b.Fatal("empty playlist")
				}
				lists++
			}
		}
		if lists != 2000 {
			b.Fatal(lists)
		}
	}
}

// BenchmarkPersonalize is the request path's CPU part: a listener's 20
// entries from a built public list.
func BenchmarkPersonalize(b *testing.B) {
	snap := NewSnapshot(1, benchCatalog(100_000))
	st := benchStations(b, 1)[0]
	w, _ := st.WindowAt(time.Date(2026, 11, 23, 4, 0, 0, 0, time.UTC))
	pl := Build(snap, st, w)
	ls := ListenerState{Excluded: map[uint64]bool{pl.Entries[0].ItemID: true}, Affinity: map[string]float64{"t:t1": 3, "c:c2": 1}}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		Personalize(pl, snap, st, ls, uint64(i), w.Start, 20)
	}
}
