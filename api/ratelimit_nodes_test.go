package api

import (
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/onair/onair/internal/testenv"
)

// TestRateLimitAcrossNodes: two API nodes with their own leases and deny
// caches, on one Redis, hammer one user far beyond the limit. Redis's GCRA
// grants at most the burst (the limit) plus the refill over the run; each
// node can hold at most one lease unspent at the end. So the requests
// admitted by both together are within one lease per node of what Redis
// granted: at most limit·(1+elapsed) and at least that minus a lease per
// node (and a small allowance for the refill in the instants before the
// first and after the last request). A limiter per node (no shared Redis
// state) would admit about twice as much; a lease not consumed in Redis,
// far more.
func TestRateLimitAcrossNodes(t *testing.T) {
	t.Parallel()
	const (
		limit   = 100 // per second, and the burst
		nodes   = 2
		workers = 8                      // per node
		run     = 500 * time.Millisecond // at least; then until some are refused
		most    = 10 * time.Second
	)
	rdb, prefix := testenv.Redis(t)
	var urls []string
	var lease int
	for range nodes {
		e := newEnv(t, func(c *Config) {
			c.Redis, c.RatePrefix, c.RateLimit = rdb, prefix, limit
			c.Now = time.Now // the deny cache and leases on the real clock, as Redis's GCRA
		})
		urls = append(urls, e.ts.URL)
		lease = e.s.limiter.leaseSize
	}
	tok, err := SignToken(testSecret, 77, "", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	var admitted, refused, other atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	// The load must outrun the limit: past the burst, the run goes on until
	// 20 requests were refused (a slow machine, or -race, sends fewer per
	// second), so that the count admitted says something.
	more := func() bool {
		since := time.Since(start)
		return since < run || (since < most && refused.Load() < 20)
	}
	for _, url := range urls {
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				client := &http.Client{}
				for more() {
					req, _ := http.NewRequest("POST", url+"/v1/progress", strings.NewReader(progressBody(time.Now())))
					req.Header.Set("Authorization", "Bearer "+tok)
					resp, err := client.Do(req)
					if err != nil {
						other.Add(1)
						continue
					}
					resp.Body.Close()
					switch resp.StatusCode {
					case 202:
						admitted.Add(1)
					case 429:
						refused.Add(1)
					default:
						other.Add(1)
					}
				}
			}()
		}
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	granted := float64(limit) * (1 + elapsed) // Redis's most over the run
	hi := granted + float64(nodes*lease)
	lo := granted - float64(nodes*lease) - 0.1*limit
	n := float64(admitted.Load())
	t.Logf("%d admitted, %d refused in %.3f s by %d nodes (limit %d/s, lease %d): Redis granted at most %.0f",
		admitted.Load(), refused.Load(), elapsed, nodes, limit, lease, granted)
	if other.Load() != 0 {
		t.Fatalf("%d requests neither admitted nor refused", other.Load())
	}
	if n > hi || n < lo {
		t.Fatalf("admitted %.0f, want within [%.0f, %.0f]: the limit does not hold across nodes", n, lo, hi)
	}
	if refused.Load() == 0 {
		t.Fatal("nothing refused: the load did not exceed the limit, so the test shows nothing")
	}
}
