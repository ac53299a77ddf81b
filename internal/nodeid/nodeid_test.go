package nodeid

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/onair/onair/internal/pgdb/pgtest"
	"github.com/onair/onair/internal/testenv"
)

// Processes starting together each get an id of their own, even when
// few ids are free and they race for the same ones.
func TestConcurrentProcessesGetDistinctIDs(t *testing.T) {
	t.Parallel()
	db := pgtest.DB(t)
	ctx := context.Background()
	const n = 40
	if _, err := db.Exec(ctx, `INSERT INTO node_leases SELECT g, 'other', now() + interval '1 hour'
		FROM generate_series(0, $1 - 1) g`, Max-n); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	seen := map[int]int{}
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			l, err := Acquire(ctx, db, -1, time.Minute, nil)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			seen[l.ID()]++
			mu.Unlock()
		})
	}
	wg.Wait()
	if len(seen) != n {
		t.Fatalf("%d processes hold %d distinct ids: %v", n, len(seen), seen)
	}
}

// An explicit --node-id another live process holds is refused; once that
// process stops cleanly it is free.
func TestExplicitIDClashRefused(t *testing.T) {
	t.Parallel()
	db := pgtest.DB(t)
	first, err := Acquire(context.Background(), db, 7, time.Minute, nil)
	if err != nil || first.ID() != 7 {
		t.Fatalf("first lease: %v, %v", first, err)
	}
	if _, err := Acquire(context.Background(), db, 7, time.Minute, nil); !errors.Is(err, ErrClash) {
		t.Fatalf("second lease of 7: %v, want ErrClash", err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- first.Run(ctx) }()
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if l, err := Acquire(context.Background(), db, 7, time.Minute, nil); err != nil || l.ID() != 7 {
		t.Fatalf("after the clean stop: %v, %v", l, err)
	}
}

// A killed process's id becomes free when its lease expires; the killed
// process, had it only been frozen, finds the lease lost at its next
// renewal and stops using the id.
func TestExpiredLeaseTakenOverAndOldHolderStops(t *testing.T) {
	t.Parallel()
	db := pgtest.DB(t)
	ctx := context.Background()
	ttl := 300 * time.Millisecond
	old, err := Acquire(ctx, db, 3, ttl, nil)
	if err != nil {
		t.Fatal(err)
	}
	var taken *Lease
	testenv.Wait(t, 5*time.Second, func() bool {
		taken, err = Acquire(ctx, db, 3, time.Minute, nil)
		return err == nil
	}, "id 3 never free after its lease expired: %v", err)
	if err := old.Run(ctx); !errors.Is(err, ErrLost) {
		t.Fatalf("the old holder's Run: %v, want ErrLost", err)
	}
	_ = taken
}
