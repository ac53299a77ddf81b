package push_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/onair/onair/internal/testenv"
	"github.com/onair/onair/push"
	"github.com/onair/onair/rooms/wire"
)

// upgrade tries one upgrade of user to room 5 through the OpenAPI-checked
// client and returns the status and the error's field.
func (e *env) upgrade(n *node, user uint64) (int, string) {
	e.t.Helper()
	auth := http.Header{"Authorization": {"Bearer " + testenv.SignToken(e.t, e.secret, user, "")}}
	return e.refusal(n, "?room=5", auth)
}

// TestUserConnsPerNode: a user holds at most MaxConnsPerUser connections on
// a node; the next upgrade is 429 naming "user" (counted), other users are
// not affected, and a closed connection frees its slot.
func TestUserConnsPerNode(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	n := e.node(push.Config{MaxConnsPerUser: 3, MaxConnsPerUserCluster: -1})
	e.openRoom(5)
	first := e.dial(n, 5, 7, "")
	e.dial(n, 5, 7, "")
	e.dial(n, 5, 7, "")
	if status, field := e.upgrade(n, 7); status != 429 || field != "user" {
		t.Fatalf("fourth connection of user 7: HTTP %d field %q, want 429 user", status, field)
	}
	if got := counter(t, n.reg, "onair_push_upgrades_total", "result", "user_node"); got != 1 {
		t.Fatalf("upgrades_total{result=user_node} = %v, want 1", got)
	}
	e.dial(n, 5, 8, "") // another user
	// The client sees 101 before the node has registered the connection.
	testenv.Wait(t, 5*time.Second, func() bool { return n.gw.Conns() == 4 }, "four connections registered")
	first.ws.Close()
	testenv.Wait(t, 5*time.Second, func() bool { return n.gw.Conns() == 3 }, "the closed connection to leave")
	e.dial(n, 5, 7, "")
}

// TestUserConnsAcrossNodes: two gateways on one Redis hold a user to
// MaxConnsPerUserCluster together; a closed connection frees its slot on
// the other node; the slots of a node cut off from Redis (as if killed:
// it cannot remove them) stop counting once their expiry passes.
func TestUserConnsAcrossNodes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	cfg := push.Config{MaxConnsPerUser: 5, MaxConnsPerUserCluster: 3, OnlineInterval: 50 * time.Millisecond}
	n1, n2 := e.node(cfg), e.node(cfg)
	e.openRoom(5)
	a := e.dial(n1, 5, 7, "")
	e.dial(n1, 5, 7, "")
	e.dial(n2, 5, 7, "")
	if status, field := e.upgrade(n2, 7); status != 429 || field != "user" {
		t.Fatalf("fourth connection of user 7 across two nodes: HTTP %d field %q, want 429 user", status, field)
	}
	if got := counter(t, n2.reg, "onair_push_upgrades_total", "result", "user_cluster"); got != 1 {
		t.Fatalf("upgrades_total{result=user_cluster} = %v, want 1", got)
	}
	testenv.Wait(t, 5*time.Second, func() bool { return n1.gw.Conns() == 2 }, "n1's connections registered")
	a.ws.Close()
	testenv.Wait(t, 5*time.Second, func() bool { return n1.gw.Conns() == 1 }, "the closed connection to leave n1")
	e.dial(n2, 5, 7, "")

	// A third node cut off from Redis after it admitted user 9 twice.
	opts := *e.rdb.Options()
	own := redis.NewClient(&opts)
	slowCfg := cfg
	slowCfg.OnlineInterval = 300 * time.Millisecond // slots expire 900 ms after the last refresh
	slowCfg.Redis = own
	n3 := e.node(slowCfg)
	v1, v2 := e.dial(n3, 5, 9, ""), e.dial(n3, 5, 9, "")
	e.dial(n1, 5, 9, "")
	key := push.UserConnsKey(e.prefix, 9)
	if got := e.rdb.ZCard(context.Background(), key).Val(); got != 3 {
		t.Fatalf("%s holds %d slots, want 3", key, got)
	}
	if err := own.Close(); err != nil {
		t.Fatal(err)
	}
	testenv.Wait(t, 5*time.Second, func() bool { return n3.gw.Conns() == 2 }, "n3's connections registered")
	v1.ws.Close()
	v2.ws.Close()
	testenv.Wait(t, 5*time.Second, func() bool { return n3.gw.Conns() == 0 }, "n3's connections to leave")
	if got := e.rdb.ZCard(context.Background(), key).Val(); got != 3 {
		t.Fatalf("after n3 lost Redis, %s holds %d slots, want its 2 left behind and n1's", key, got)
	}
	// Until they expire user 9 is refused, then admitted.
	testenv.Wait(t, 10*time.Second, func() bool {
		status, _ := e.upgrade(n1, 9)
		return status == http.StatusSwitchingProtocols
	}, "user 9's slots on the cut-off node to expire")
	if got := counter(t, n3.reg, "onair_push_errors_total", "op", "user_conns"); got < 2 {
		t.Fatalf("errors_total{op=user_conns} on the cut-off node = %v, want >= 2 (two slots it could not free)", got)
	}
}

// TestUserConnsFailOpen: when Redis does not answer, the cross-node check
// admits (counted) and the per-node limit still holds.
func TestUserConnsFailOpen(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.openRoom(5)
	// A client whose every command fails except the room check: a node
	// whose cluster check cannot reach Redis is modelled with a hook that
	// fails the admission script (EVALSHA/EVAL) only.
	opts := *e.rdb.Options()
	own := redis.NewClient(&opts)
	own.AddHook(failScripts{})
	t.Cleanup(func() { own.Close() })
	n := e.node(push.Config{MaxConnsPerUser: 2, MaxConnsPerUserCluster: 1, Redis: own})
	e.dial(n, 5, 7, "")
	e.dial(n, 5, 7, "") // beyond the cluster limit of 1: admitted, Redis "down"
	if status, field := e.upgrade(n, 7); status != 429 || field != "user" {
		t.Fatalf("third connection: HTTP %d field %q, want 429 user (the per-node limit)", status, field)
	}
	if got := counter(t, n.reg, "onair_push_errors_total", "op", "user_conns"); got < 2 {
		t.Fatalf("errors_total{op=user_conns} = %v, want >= 2", got)
	}
}

// failScripts fails every Lua script call, as an unreachable Redis would.
type failScripts struct{}

func (failScripts) DialHook(next redis.DialHook) redis.DialHook { return next }
func (failScripts) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if name := strings.ToLower(cmd.Name()); name == "evalsha" || name == "eval" {
			cmd.SetErr(errRedisDown)
			return errRedisDown
		}
		return next(ctx, cmd)
	}
}
func (failScripts) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

var errRedisDown = redisDown("redis: connection refused (test)")

type redisDown string

func (e redisDown) Error() string { return string(e) }

// TestHeadCountCountsUsers: one user on three connections (two on one
// node, one on another) counts once on both nodes; the user stops
// counting when their last connection anywhere closes.
func TestHeadCountCountsUsers(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	cfg := push.Config{OnlineInterval: 100 * time.Millisecond}
	n1, n2 := e.node(cfg), e.node(cfg)
	e.openRoom(5)
	v1 := e.dial(n1, 5, 1, "")
	a, b := e.dial(n1, 5, 7, ""), e.dial(n1, 5, 7, "")
	v2 := e.dial(n2, 5, 2, "")
	c := e.dial(n2, 5, 7, "")
	want := func(v *viewer, n int64) {
		t.Helper()
		v.online(func(c int64) bool { return c == n }, "online %d", n)
	}
	want(v1, 3)
	want(v2, 3)
	// Never more than 3, whatever the order of reports.
	for range 5 {
		if got := v1.online(func(int64) bool { return true }, "an online frame"); got > 3 {
			t.Fatalf("online %d with users 1, 2 and 7: a user counted twice", got)
		}
	}
	testenv.Wait(t, 5*time.Second, func() bool { return n1.gw.Conns() == 3 }, "n1's connections registered")
	a.ws.Close()
	b.ws.Close() // user 7 is still on n2: n1 removes them, n2 adds them back
	testenv.Wait(t, 5*time.Second, func() bool { return n1.gw.Conns() == 1 }, "user 7 to leave n1")
	want(v1, 3)
	testenv.Wait(t, 5*time.Second, func() bool { return n2.gw.Conns() == 2 }, "n2's connections registered")
	c.ws.Close()
	testenv.Wait(t, 5*time.Second, func() bool { return n2.gw.Conns() == 1 }, "user 7 to leave n2")
	// Removed at once (not when the expiry passes, 300 ms later).
	if err := e.rdb.ZScore(context.Background(), wire.Key(e.prefix, 5, wire.KindViewers), "7").Err(); err != redis.Nil {
		t.Fatalf("user 7 left everywhere but is still in the head-count set (%v)", err)
	}
	want(v1, 2)
	want(v2, 2)
}

// TestFrameFlood: a client that sends frames beyond the rate (default 20/s,
// burst 40) is closed with 3508 "too many frames" (counted); one within
// the burst is not.
func TestFrameFlood(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	n := e.node(push.Config{})
	e.openRoom(5)
	calm := e.dial(n, 5, 1, "")
	calm.next(5 * time.Second) // snapshot
	for range 30 {
		calm.send(`{"type":"ping"}`)
	}
	for i := 0; i < 30; {
		if m := calm.next(5 * time.Second); m.Type == "pong" {
			i++
		}
	}
	flood := e.dial(n, 5, 2, "")
	for range 200 {
		if err := flood.ws.WriteMessage(1, []byte(`{"type":"ping"}`)); err != nil {
			break // closed under our feet
		}
	}
	if code, reason := flood.closeCode(5 * time.Second); code != push.DisconnectTooManyFrames.Code || reason != "too many frames" {
		t.Fatalf("flooding client closed with %d %q, want 3508 too many frames", code, reason)
	}
	if got := counter(t, n.reg, "onair_push_disconnects_total", "reason", "too many frames"); got != 1 {
		t.Fatalf("disconnects_total{reason=too many frames} = %v, want 1", got)
	}
	calm.send(`{"type":"ping"}`) // the calm one is still there
	for calm.next(5*time.Second).Type != "pong" {
	}
}
