package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/onair/onair/internal/testenv"
)

// pauseFresh is how long a node trusts a pause flag it read when no pause
// watcher is live (api's touchFresh, docs/api.md's "a change made on
// another API node shows within 0.5 s").
const pauseFresh = 500 * time.Millisecond

// TestServePauseReachesEveryNode: a pause or resume made through node a
// shows in node b's progress replies before the flag b had just read
// could have expired (pauseFresh): so it came through the pause watcher,
// not through expiry, and within the bound docs/api.md states. After the
// watchers' Redis connections are killed, they resubscribe and the next
// change comes through them again.
func TestServePauseReachesEveryNode(t *testing.T) {
	t.Parallel()
	kf := testenv.Kafka(t, 1)
	// A Redis of its own: the test kills the watchers' connections.
	rs := testenv.PrivateRedis(t)
	a := startServe(t, kf.Addrs(), "--redis-addrs", rs.Addr())
	b := startServe(t, kf.Addrs(), "--redis-addrs", rs.Addr(), "--redis-prefix", a.prefix, "--clickhouse-database", a.db)
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr()})
	t.Cleanup(func() { rdb.Close() })
	p := &pauser{t: t, tok: a.token(t, 91, ""), a: a, b: b}

	p.change(true)
	p.change(false)

	ctx := context.Background()
	waitWatchers := func(what string) {
		t.Helper()
		testenv.Wait(t, 10*time.Second, func() bool {
			n, err := rdb.PubSubNumSub(ctx, a.prefix+"pause").Result()
			return err == nil && n[a.prefix+"pause"] == 2
		}, "both nodes' pause watchers to be subscribed %s", what)
	}
	waitWatchers("at start")
	killed, err := rdb.ClientKillByFilter(ctx, "TYPE", "pubsub").Result()
	if err != nil || killed != 2 {
		t.Fatalf("CLIENT KILL TYPE pubsub: %d killed, %v; want the two watchers", killed, err)
	}
	waitWatchers("again after their connections were killed")
	p.change(true)
	p.change(false)
}

// pauser changes the pause flag on node a and watches node b's replies.
type pauser struct {
	t    *testing.T
	tok  string
	a, b *served
}

func (p *pauser) do(method, url, body string) (int, string) {
	p.t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+p.tok)
	resp, err := httpClient.Do(req)
	if err != nil {
		p.t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out)
}

// progressB posts a report to node b and returns the history_paused it
// answered.
func (p *pauser) progressB() bool {
	p.t.Helper()
	code, out := p.do(http.MethodPost, p.b.url+"/v1/progress",
		fmt.Sprintf(`{"biz":"audio","item_id":1,"position_ms":1000,"ts":%d}`, time.Now().UnixMilli()))
	if code != http.StatusAccepted {
		p.t.Fatalf("POST /v1/progress on node b: %d %s", code, out)
	}
	return strings.Contains(out, `"history_paused":true`)
}

// change sets the flag to paused on node a, right after node b read the
// old value, and requires b to answer the new one before b's read could
// have expired. On a busy machine an attempt can be too slow to tell (the
// new value seen only after the expiry); it is retried then, but a dead
// watcher never shows the change in time.
func (p *pauser) change(paused bool) {
	p.t.Helper()
	for attempt := 1; ; attempt++ {
		read := time.Now()
		if got := p.progressB(); got == paused {
			p.t.Fatalf("node b answered history_paused %v before the change", got)
		}
		code, out := p.do(http.MethodPut, p.a.url+"/v1/history/settings", fmt.Sprintf(`{"history_paused":%v}`, paused))
		if code != http.StatusOK {
			p.t.Fatalf("PUT /v1/history/settings on node a: %d %s", code, out)
		}
		set := time.Now()
		testenv.Wait(p.t, 2*pauseFresh, func() bool { return p.progressB() == paused },
			"node b to answer history_paused %v, set on node a", paused)
		seen := time.Since(read)
		if seen < pauseFresh {
			p.t.Logf("history_paused %v: node b answered it %s after node a set it (%s after b's read of the old value)",
				paused, time.Since(set).Round(time.Millisecond), seen.Round(time.Millisecond))
			return
		}
		if attempt == 3 {
			p.t.Fatalf("history_paused %v: node b answered it only %s after its read of the old value, 3 times: not before that read expired (%s), so not through the pause watcher",
				paused, seen.Round(time.Millisecond), pauseFresh)
		}
		// undo, so the next attempt changes the flag again
		if code, out := p.do(http.MethodPut, p.a.url+"/v1/history/settings", fmt.Sprintf(`{"history_paused":%v}`, !paused)); code != http.StatusOK {
			p.t.Fatalf("PUT /v1/history/settings on node a: %d %s", code, out)
		}
		testenv.Wait(p.t, 2*pauseFresh, func() bool { return p.progressB() != paused }, "node b to answer the undone flag")
	}
}
