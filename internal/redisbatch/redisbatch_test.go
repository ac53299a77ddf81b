package redisbatch

import (
	"context"
	"fmt"
	"sync"
	"testing"

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
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			key := fmt.Sprintf("%sk%d", prefix, w)
			for i := 1; i <= per; i++ {
				got, err := script.Run(ctx, rdb, []string{key}, 1).Int()
				if err != nil || got != i {
					errs <- fmt.Errorf("worker %d step %d: got %d, %v", w, i, got, err)
					return
				}
				// A failing command in the same batch fails alone.
				if err := rdb.Incr(ctx, prefix+"str").Err(); err == nil {
					errs <- fmt.Errorf("INCR of a string succeeded")
					return
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
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
