package loadtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/onair/onair/internal/apiclient"
	"github.com/onair/onair/internal/authtoken"
)

// Seeding defaults, used when a RunConfig field is zero.
const (
	// DefaultSeedItems is how many items each user gets: a few more than
	// the scenarios' limit=20, so that a continue page stays full even
	// when the attack's own writes finish some of them.
	DefaultSeedItems = 24
	// DefaultSeedWait bounds the wait for seeded events to be readable.
	DefaultSeedWait = 60 * time.Second
	// seedBatch is the most events of one seeding POST (the API's limit).
	seedBatch = 1000
	// seedWorkers is the seeding POSTs in flight: enough to keep a 2-core
	// server busy, few enough not to trip its per-caller rate limit.
	seedWorkers = 8
	// seedSample is how many users are polled until seeded events show.
	seedSample = 16
	// seedServiceID is the sub of the seeding service token.
	seedServiceID = 999_999_999
)

// SeedSummary is what the seed phase of a run did. It is not part of the
// measured attack.
type SeedSummary struct {
	// Users and ItemsPerUser give the seeded population: every user id in
	// 1..Users got ItemsPerUser distinct unfinished items.
	Users        int `json:"users"`
	ItemsPerUser int `json:"items_per_user"`
	// Events and Requests are what was posted (POST /v1/events).
	Events   int `json:"events"`
	Requests int `json:"requests"`
	// Retries counts requests repeated after a 429, 503 or transport error.
	Retries int `json:"retries"`
	// PostSeconds is the time to get every seeding batch accepted.
	PostSeconds float64 `json:"post_seconds"`
	// VisibleSeconds is the time after that until every sampled user's
	// seeded items showed in GET /v1/history.
	VisibleSeconds float64 `json:"visible_seconds"`
	// Sampled is the number of users polled.
	Sampled int `json:"sampled"`
	// WarmSeconds is the time to read every seeded user's first page once.
	// A user's first read after its history was created by the aggregator
	// re-warms Redis from ClickHouse (the guard against lost Redis data);
	// the attack measures steady state, the cold read has its own figure
	// (history's BenchmarkHistoryDeepPage).
	WarmSeconds float64 `json:"warm_seconds"`
}

// seedItem is user uid's j-th seeded item: distinct for j < n as long as
// n <= items.
func seedItem(uid uint64, j, n, items int) uint64 {
	base := (uid - 1) * uint64(n) % uint64(items)
	return (base+uint64(j))%uint64(items) + 1
}

// seedEvent is the j-th seeded event of uid: an unfinished position
// (at most half the item) so that it counts for /v1/continue too.
func seedEvent(b []byte, uid uint64, j, n, items int, ts int64, prefix string) []byte {
	item := seedItem(uid, j, n, items)
	dur := durationOf(item)
	pos := 1000 + int64(uid*31+uint64(j)*17)%(dur/2)
	b = append(b, `{"type":"progress","user_id":`...)
	b = strconv.AppendUint(b, uid, 10)
	b = append(b, `,"biz":"`...)
	b = append(b, bizOf(item)...)
	b = append(b, `","item_id":`...)
	b = strconv.AppendUint(b, item, 10)
	b = append(b, `,"position_ms":`...)
	b = strconv.AppendInt(b, pos, 10)
	b = append(b, `,"duration_ms":`...)
	b = strconv.AppendInt(b, dur, 10)
	b = append(b, `,"ts":`...)
	b = strconv.AppendInt(b, ts, 10)
	b = append(b, `,"device":"lt-seed","event_id":"`...)
	b = append(b, prefix...)
	b = strconv.AppendUint(b, uid, 10)
	b = append(b, '-')
	b = strconv.AppendInt(b, int64(j), 10)
	return append(b, `"}`...)
}

// Seed gives every user in 1..cfg.Users cfg.SeedItems distinct items with
// unfinished positions, posted as batches of up to 1000 events with a
// service token, then waits (at most cfg.SeedWait) until a sample of users
// sees all of theirs in GET /v1/history. Item j of a user has ts start+j,
// so a user's seeded items are the newest of its history when the attack
// begins.
func Seed(ctx context.Context, cfg RunConfig) (SeedSummary, error) {
	cfg.setDefaults()
	if err := cfg.validate(true); err != nil {
		return SeedSummary{}, err
	}
	return seed(ctx, cfg, newClient(cfg.Timeout, nil))
}

func seed(ctx context.Context, cfg RunConfig, client *http.Client) (SeedSummary, error) {
	n := cfg.SeedItems
	s := SeedSummary{Users: cfg.Users, ItemsPerUser: n, Events: cfg.Users * n}
	// Role service may post events for any user (api.md, "Auth").
	tok, err := authtoken.Sign(cfg.TokenSecret, seedServiceID, authtoken.RoleService, time.Hour+cfg.SeedWait)
	if err != nil {
		return s, fmt.Errorf("cannot sign the seeding service token: %w", err)
	}
	api := apiclient.Client{Base: cfg.Target, Token: tok, HTTP: client}
	prefix := "lt-seed-" + newRunID() + "-"
	// Now, so that the seeded items are the newest of every user's history
	// (and on its first page) even after earlier runs; the attack's own
	// writes come later and are newer still.
	start := time.Now().UnixMilli() - int64(n)

	started := time.Now()
	bodies := make(chan []byte, seedWorkers)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for range seedWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for body := range bodies {
				retries, err := api.PostEvents(cctx, body)
				mu.Lock()
				s.Requests++
				s.Retries += retries
				if err != nil && firstErr == nil {
					firstErr = err
					cancel()
				}
				mu.Unlock()
			}
		}()
	}
	b := make([]byte, 0, 220*seedBatch)
	k := 0
	flush := func() bool {
		b = append(b, "]}"...)
		select {
		case bodies <- b:
		case <-cctx.Done():
			return false
		}
		b, k = make([]byte, 0, 220*seedBatch), 0
		return true
	}
produce:
	for uid := uint64(1); uid <= uint64(cfg.Users); uid++ {
		for j := range n {
			if k == 0 {
				b = append(b, `{"events":[`...)
			} else {
				b = append(b, ',')
			}
			b = seedEvent(b, uid, j, n, cfg.Items, start+int64(j), prefix)
			if k++; k == seedBatch && !flush() {
				break produce
			}
		}
	}
	if k > 0 {
		flush()
	}
	close(bodies)
	wg.Wait()
	s.PostSeconds = time.Since(started).Seconds()
	if firstErr != nil {
		return s, fmt.Errorf("seeding: %w", firstErr)
	}
	if err := ctx.Err(); err != nil {
		return s, fmt.Errorf("seeding interrupted: %w", err)
	}

	posted := time.Now()
	if err = waitSeeded(ctx, cfg, client, start, &s); err != nil {
		s.VisibleSeconds = time.Since(posted).Seconds()
		return s, err
	}
	s.VisibleSeconds = time.Since(posted).Seconds()
	warm := time.Now()
	err = readEveryUserOnce(ctx, cfg, client)
	s.WarmSeconds = time.Since(warm).Seconds()
	return s, err
}

// readEveryUserOnce reads page 1 of every seeded user, 32 at a time.
func readEveryUserOnce(ctx context.Context, cfg RunConfig, client *http.Client) error {
	gen, err := newGenerator(RunConfig{Users: cfg.Users, Duration: cfg.SeedWait, TokenSecret: cfg.TokenSecret}, false, 0)
	if err != nil {
		return err
	}
	uids := make(chan uint64)
	errs := make(chan error, 32)
	var wg sync.WaitGroup
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for uid := range uids {
				if err := warmUser(ctx, client, cfg, gen.tokens[uid-1], uid); err != nil {
					errs <- fmt.Errorf("warming user %d: %w", uid, err)
					return
				}
			}
		}()
	}
	var first error
feed:
	for uid := uint64(1); uid <= uint64(cfg.Users); uid++ {
		select {
		case uids <- uid:
		case first = <-errs:
			break feed
		case <-ctx.Done():
			first = ctx.Err()
			break feed
		}
	}
	close(uids)
	wg.Wait()
	if first == nil {
		select {
		case first = <-errs:
		default:
		}
	}
	return first
}

// warmUser reads uid's first page. A 503 (the server loading the user from
// ClickHouse took too long, say while ClickHouse merges after a big run) is
// retried with backoff, at most 5 times, as an app would.
func warmUser(ctx context.Context, client *http.Client, cfg RunConfig, token string, uid uint64) error {
	backoff := 100 * time.Millisecond
	for attempt := 0; ; attempt++ {
		_, err := seededVisible(ctx, client, cfg, token, uid, 0)
		if err == nil || !errors.Is(err, errUnavailable) || attempt == 5 {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff *= 2
	}
}

// errUnavailable marks a 503 reply: the server asks to retry.
var errUnavailable = errors.New("service unavailable")

// waitSeeded polls GET /v1/history?limit=100 of a sample of users until
// each shows all its seeded items with their seeded ts or newer.
func waitSeeded(ctx context.Context, cfg RunConfig, client *http.Client, start int64, s *SeedSummary) error {
	sample := seedSampleUsers(cfg.Users, cfg.SeedItems)
	s.Sampled = len(sample)
	gen, err := newGenerator(RunConfig{Users: cfg.Users, Duration: cfg.SeedWait, TokenSecret: cfg.TokenSecret}, false, 0)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(cfg.SeedWait)
	var uid uint64
	var seen int
	for len(sample) > 0 {
		uid = sample[0]
		seen, err = seededVisible(ctx, client, cfg, gen.tokens[uid-1], uid, start)
		if err == nil && seen == cfg.SeedItems {
			sample = sample[1:]
			continue
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
	if len(sample) == 0 {
		return nil
	}
	if err != nil {
		return fmt.Errorf("seeded events not readable after %s: user %d: %w", cfg.SeedWait, uid, err)
	}
	return fmt.Errorf("seeded events not visible after %s: user %d sees %d of its %d seeded items in GET /v1/history (is the aggregate role running?)",
		cfg.SeedWait, uid, seen, cfg.SeedItems)
}

// seedSampleUsers picks the users polled: half spread over the whole id
// range, half over the users of the last seedWorkers batches, which were
// produced last to their partitions: once those show, the aggregator has
// worked through nearly all the seed.
func seedSampleUsers(users, perUser int) []uint64 {
	tail := min(users, max(1, seedWorkers*seedBatch/perUser))
	seen := map[uint64]bool{}
	var out []uint64
	add := func(lo, hi, k int) {
		for i := range k {
			uid := uint64(lo)
			if k > 1 {
				uid = uint64(lo) + uint64(i)*uint64(hi-lo)/uint64(k-1)
			}
			if !seen[uid] {
				seen[uid] = true
				out = append(out, uid)
			}
		}
	}
	add(1, users, seedSample/2)
	add(users-tail+1, users, seedSample/2)
	return out
}

// seededVisible counts uid's seeded items on its first history page.
func seededVisible(ctx context.Context, client *http.Client, cfg RunConfig, token string, uid uint64, start int64) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, cfg.Target+"/v1/history?limit=100", nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", token)
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		err := fmt.Errorf("GET /v1/history: %s: %s", resp.Status, bytes.TrimSpace(msg))
		if resp.StatusCode == http.StatusServiceUnavailable {
			err = fmt.Errorf("%w: %w", errUnavailable, err)
		}
		return 0, err
	}
	var page historyPage
	if err := decodeJSON(resp.Body, &page); err != nil {
		return 0, fmt.Errorf("GET /v1/history: %w", err)
	}
	want := make(map[uint64]int64, cfg.SeedItems)
	for j := range cfg.SeedItems {
		want[seedItem(uid, j, cfg.SeedItems, cfg.Items)] = start + int64(j)
	}
	seen := 0
	for _, it := range page.Items {
		if ts, ok := want[it.ItemID]; ok && it.Biz == bizOf(it.ItemID) && it.UpdatedAt >= ts {
			seen++
			delete(want, it.ItemID)
		}
	}
	return seen, nil
}
