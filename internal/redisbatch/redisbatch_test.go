package redisbatch

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/onair/onair/internal/testenv"
)

func TestConcurrentCommandsKeepTheirOwnResults(t *testing.T) {
	t.Parallel()
	_, prefix := testenv.Redis(t)
	rdb, closeAll := Wrap(&redis.UniversalOptions{Addrs: []string{testenv.RedisAddr(t)}}, Config{})
	defer closeAll()
	ctx := context.Background()
	script := redis.NewScript(`return redis.call('INCRBY', KEYS[1], ARGV[1])`)
	if err := rdb.Set(ctx, prefix+"str", "x", 0).Err(); err != nil {
		t.Fatal(err)
	}
	const workers, per = 50, 200
	parallel(t, workers, func(w int) error {
		key := fmt.Sprintf("%sk%d", prefix, w)
		for i := 1; i <= per; i++ {
			got, err := script.Run(ctx, rdb, []string{key}, 1).Int()
			if err != nil || got != i {
				return fmt.Errorf("worker %d step %d: got %d, %v", w, i, got, err)
			}
			// A failing command in the same batch fails alone.
			if err := rdb.Incr(ctx, prefix+"str").Err(); err == nil {
				return fmt.Errorf("INCR of a string succeeded")
			}
		}
		return nil
	})
}

// parallel runs fn(0) … fn(n-1) concurrently and fails t with every error.
func parallel(t *testing.T, n int, fn func(w int) error) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for w := 0; w < n; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fn(w); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestConcurrentPipelinesKeepTheirOwnResults(t *testing.T) {
	t.Parallel()
	_, prefix := testenv.Redis(t)
	rdb, closeAll := Wrap(&redis.UniversalOptions{Addrs: []string{testenv.RedisAddr(t)}}, Config{MaxBatch: 16})
	defer closeAll()
	ctx := context.Background()
	const workers, per = 40, 100
	parallel(t, workers, func(w int) error {
		key := fmt.Sprintf("%sp%d", prefix, w)
		for i := 1; i <= per; i++ {
			var incr *redis.IntCmd
			var get *redis.StringCmd
			_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
				incr = p.Incr(ctx, key)
				get = p.Get(ctx, key)
				return nil
			})
			if err != nil || incr.Val() != int64(i) || get.Val() != fmt.Sprint(i) {
				return fmt.Errorf("worker %d step %d: INCR %d, GET %q, %v", w, i, incr.Val(), get.Val(), err)
			}
			// A pipeline with a failing command reports it, and its
			// other commands still get their results.
			var ok *redis.IntCmd
			_, err = rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
				p.HGet(ctx, key, "f") // WRONGTYPE
				ok = p.Exists(ctx, key)
				return nil
			})
			if err == nil || ok.Val() != 1 {
				return fmt.Errorf("worker %d: failing pipeline: err %v, EXISTS %d", w, err, ok.Val())
			}
		}
		return nil
	})
}

// A transaction is not split into a shared batch: MULTI/EXEC stays atomic.
func TestTransactionsPassThrough(t *testing.T) {
	t.Parallel()
	_, prefix := testenv.Redis(t)
	rdb, closeAll := Wrap(&redis.UniversalOptions{Addrs: []string{testenv.RedisAddr(t)}}, Config{})
	defer closeAll()
	ctx := context.Background()
	key := prefix + "tx"
	parallel(t, 20, func(int) error {
		for i := 0; i < 50; i++ {
			var a, b *redis.IntCmd
			_, err := rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
				a = p.Incr(ctx, key)
				b = p.Incr(ctx, key)
				return nil
			})
			if err != nil || b.Val() != a.Val()+1 {
				return fmt.Errorf("transaction interleaved: %d then %d, %v", a.Val(), b.Val(), err)
			}
		}
		return nil
	})
}

func TestClosedClientFailsFast(t *testing.T) {
	t.Parallel()
	rdb, closeAll := Wrap(&redis.UniversalOptions{Addrs: []string{testenv.RedisAddr(t)}}, Config{})
	if err := closeAll(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.Ping(context.Background()).Err(); err == nil {
		t.Fatal("ping on a closed client succeeded")
	}
}

// TestCallerLeavingMidBatchDoesNotRace: a caller whose deadline passes
// while its batch is stuck on a frozen Redis (SIGSTOP) gets its error at
// its deadline, and go-redis then sets that error on its command while the
// batch still holds it. The batch works on copies, so under -race this
// reports nothing; the results reach callers that stayed.
func TestCallerLeavingMidBatchDoesNotRace(t *testing.T) {
	t.Parallel()
	rs := testenv.PrivateRedis(t)
	rdb, closeAll := Wrap(&redis.UniversalOptions{Addrs: []string{rs.Addr()}, ContextTimeoutEnabled: true}, Config{})
	defer closeAll()
	ctx := context.Background()
	if err := rdb.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(rs.PID(), syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	thawed := false
	thaw := func() {
		if !thawed {
			thawed = true
			_ = syscall.Kill(rs.PID(), syscall.SIGCONT)
		}
	}
	defer thaw()
	var wg sync.WaitGroup
	stayed := make(chan error, 1)
	wg.Add(1)
	go func() { // stays: no deadline of its own, so the batch waits for Redis
		defer wg.Done()
		stayed <- rdb.Get(ctx, "k").Err()
	}()
	for range 20 { // leave at 20 ms, with the batch in flight
		short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
		start := time.Now()
		err := rdb.Get(short, "k").Err()
		took := time.Since(start)
		cancel()
		// A caller queued behind the stuck batch leaves with its context's
		// error. One that formed a batch of its own (before the staying
		// caller's command was queued) ends with that batch, whose read
		// deadline is its deadline: an i/o timeout, as plain go-redis gives.
		var ne net.Error
		if !errors.Is(err, context.DeadlineExceeded) && !(errors.As(err, &ne) && ne.Timeout()) {
			t.Fatalf("a caller past its deadline on a frozen Redis: %v, want a deadline error", err)
		}
		if took > time.Second {
			t.Fatalf("a caller with a 20 ms deadline waited %v on a frozen Redis", took)
		}
	}
	thaw()
	wg.Wait()
	if err := <-stayed; err != nil {
		t.Fatalf("the caller that stayed: %v", err)
	}
}
