package ingest

import (
	"strconv"
	"sync"
	"testing"
	"time"
)

func TestIDGenUniqueAcrossGoroutines(t *testing.T) {
	g, err := NewIDGen(1023)
	if err != nil {
		t.Fatal(err)
	}
	const workers, per = 8, 20000
	ids := make([][]string, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			last := uint64(0)
			for range per {
				id := g.Next()
				v, err := strconv.ParseUint(id, 36, 64)
				if err != nil || v <= last {
					t.Errorf("id %q (%d) after %d: not increasing in one goroutine (%v)", id, v, last, err)
					return
				}
				last = v
				ids[w] = append(ids[w], id)
			}
		})
	}
	wg.Wait()
	seen := make(map[string]bool, workers*per)
	for _, l := range ids {
		for _, id := range l {
			if seen[id] {
				t.Fatalf("duplicate id %q", id)
			}
			seen[id] = true
		}
	}
}

func TestIDGenMonotonicWhenClockStepsBack(t *testing.T) {
	g, _ := NewIDGen(5)
	clock := time.UnixMilli(1763800000000)
	g.now = func() time.Time { return clock }
	var last uint64
	next := func() uint64 {
		t.Helper()
		v, err := strconv.ParseUint(g.Next(), 36, 64)
		if err != nil || v <= last {
			t.Fatalf("%d after %d: %v", v, last, err)
		}
		if node := v >> idSeqBits & MaxIDNode; node != 5 {
			t.Fatalf("node %d in %d", node, v)
		}
		last = v
		return v
	}
	first := next()
	if ms := int64(first>>(idNodeBits+idSeqBits)) + idEpoch; ms != clock.UnixMilli() {
		t.Fatalf("id time %d, want %d", ms, clock.UnixMilli())
	}
	for range 5000 { // more than 4096 in one millisecond: borrows the next
		next()
	}
	clock = clock.Add(-time.Hour)
	for range 100 {
		next()
	}
	clock = clock.Add(2 * time.Hour)
	if ms := int64(next()>>(idNodeBits+idSeqBits)) + idEpoch; ms != clock.UnixMilli() {
		t.Fatalf("id time %d, want %d once the clock is ahead again", ms, clock.UnixMilli())
	}
}

func TestIDGenNodes(t *testing.T) {
	if _, err := NewIDGen(1024); err == nil {
		t.Fatal("node 1024 accepted")
	}
	a, _ := NewIDGen(1)
	b, _ := NewIDGen(2)
	now := func() time.Time { return time.UnixMilli(1763800000000) }
	a.now, b.now = now, now
	if x, y := a.Next(), b.Next(); x == y || len(x) > 13 {
		t.Fatalf("%q %q", x, y)
	}
}

func BenchmarkIDGen(b *testing.B) {
	g, _ := NewIDGen(1)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			_ = g.Next()
		}
	})
}
