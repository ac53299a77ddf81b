package idseg

import (
	"context"
	"sync"
	"testing"

	"github.com/onair/onair/internal/pgdb/pgtest"
	"github.com/onair/onair/internal/testenv"
)

// Two allocators stand for two API processes: between them, and across a
// "restart" (a third allocator on the same sequence), no id is handed out
// twice, and every id is at least Start.
func TestNoIDTwiceAcrossProcesses(t *testing.T) {
	t.Parallel()
	db := pgtest.DB(t)
	ctx := context.Background()
	newAlloc := func() *Allocator {
		a, err := New(ctx, Config{DB: db, Name: "users", Start: 1_000_000, Step: 50})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	allocs := []*Allocator{newAlloc(), newAlloc()}
	var mu sync.Mutex
	seen := map[int64]int{}
	var wg sync.WaitGroup
	for w := range 8 {
		a := allocs[w%2]
		wg.Go(func() {
			for range 500 {
				id, err := a.Next(ctx)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				seen[id]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	restarted := newAlloc()
	for range 100 {
		id, err := restarted.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		seen[id]++
	}
	if len(seen) != 8*500+100 {
		t.Fatalf("%d distinct ids for %d handed out", len(seen), 8*500+100)
	}
	for id, n := range seen {
		if n != 1 || id < 1_000_000 {
			t.Fatalf("id %d handed out %d times (ids start at 1000000)", id, n)
		}
	}
}

// Ids of one allocator increase, and the block ahead is fetched before the
// current one runs out: after the first block, Next finds it ready.
func TestFetchesAheadAndIncreases(t *testing.T) {
	t.Parallel()
	db := pgtest.DB(t)
	ctx := context.Background()
	a, err := New(ctx, Config{DB: db, Name: "rooms", Step: 10})
	if err != nil {
		t.Fatal(err)
	}
	prev := int64(0)
	for range 45 {
		id, err := a.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if id <= prev {
			t.Fatalf("id %d after %d", id, prev)
		}
		prev = id
	}
	testenv.Wait(t, 5e9, func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		return a.spare != nil || a.end-a.cur >= a.low
	}, "no block fetched ahead")
}
