package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/onair/onair/internal/chdb"
	"github.com/onair/onair/internal/testenv"
)

// TestWalletGiftStorm: concurrent viewers send paid gifts to one anchor
// through two API processes (each runs an outbox relay); one of them is
// SIGKILLed mid-storm, and whatever was in flight there is retried on the
// other with the same event_id; every fifth gift is also retried at once.
// Then: every 202's coins are charged once (each wallet = recharge − the
// coins of its distinct 202'd gifts), every 402 charged zero, the anchor's
// income is the documented split of exactly those gifts, the room ranking
// counts each paid gift once, ClickHouse holds one event per paid gift
// and every ledger entry once (the copy of the killed process too), and
// `onair wallet reconcile` exits 0.
//
// Breaks tried: the relay's event id from the producer (server-assigned,
// ServerID) instead of "wt<transfer id>" → after the kill a re-produced
// batch counts twice and the ranking exceeds the charged coins; the
// idempotency key without the sender (event_id alone) → two viewers'
// "g-0" collide and the second is answered with the first's transfer.
func TestWalletGiftStorm(t *testing.T) {
	t.Parallel()
	o := testenv.StartOnair(t, "", "--rate-limit", "0")
	b := startServeChild(t, o)
	anchor := testenv.SignToken(t, o.Secret, 8, "")
	roomPath := "/v1/rooms/" + strconv.FormatUint(anchorRoom(t, o.URL, anchor, testenv.SignToken(t, o.Secret, 1, "admin"), 8), 10)
	const viewers, gifts, recharge = 30, 40, 3000
	var (
		mu      sync.Mutex
		charged = map[uint64]map[string]int64{} // user → event_id → coins
		short   atomic.Int64
		posted  atomic.Int64
		killed  atomic.Bool
	)
	for u := uint64(1001); u < 1001+viewers; u++ {
		tok := testenv.SignToken(t, o.Secret, u, "")
		if code, body := do(t, http.MethodPost, o.URL+"/v1/wallet/recharge", tok, map[string]any{"order_id": "r", "coins": recharge}); code != 200 {
			t.Fatalf("recharge: %d %s", code, body)
		}
		charged[u] = map[string]int64{}
	}
	var wg sync.WaitGroup
	for u := uint64(1001); u < 1001+viewers; u++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok := testenv.SignToken(t, o.Secret, u, "")
			rng := rand.New(rand.NewPCG(u, 7))
			for i := range gifts {
				gid := 1 + rng.IntN(3)
				body := map[string]any{"gift_id": gid, "count": 1 + rng.IntN(3), "event_id": fmt.Sprint("g-", i)}
				url := o.URL
				if u%2 == 0 && !killed.Load() {
					url = b.url
				}
				tries := 1
				if i%5 == 0 {
					tries = 2 // an immediate client retry
				}
				for range tries {
					code, reply, err := tryPost(url+roomPath+"/gifts", tok, body)
					if err != nil { // the process died under the request: retry elsewhere
						code, reply, err = tryPost(o.URL+roomPath+"/gifts", tok, body)
						if err != nil {
							t.Errorf("gift retry: %v", err)
							return
						}
					}
					switch code {
					case http.StatusAccepted:
						var r struct{ Coins int64 }
						_ = json.Unmarshal([]byte(reply), &r)
						mu.Lock()
						if c, ok := charged[u][body["event_id"].(string)]; ok && c != r.Coins {
							t.Errorf("user %d %s: coins %d then %d", u, body["event_id"], c, r.Coins)
						}
						charged[u][body["event_id"].(string)] = r.Coins
						mu.Unlock()
					case http.StatusPaymentRequired:
						short.Add(1)
					default:
						t.Errorf("gift: %d %s", code, reply)
						return
					}
				}
				posted.Add(1)
			}
		}()
	}
	// Kill the second API process a third of the way through.
	testenv.Wait(t, 60*time.Second, func() bool { return posted.Load() >= viewers*gifts/3 }, "a third of the gifts")
	b.kill(t)
	killed.Store(true)
	wg.Wait()
	if t.Failed() {
		return
	}

	want := map[uint64]int64{}
	var income, paid, transfers int64 = 0, 0, viewers // a recharge each
	for u, evs := range charged {
		for _, c := range evs {
			want[u] += c
			income += c * 50 / 100
			paid++
			transfers++
			if c*50/100 > 0 {
				transfers++ // the anchor's share
			}
		}
	}
	t.Logf("%d gifts paid, %d refused for funds, %d coins", paid, short.Load(), sumOf(want))
	if short.Load() == 0 {
		t.Fatal("no 402 in the storm: recharge less")
	}
	for u, spent := range want {
		tok := testenv.SignToken(t, o.Secret, u, "")
		if got := getOK(t, o.URL+"/v1/wallet", tok); got != fmt.Sprintf(`{"balance":%d,"income":0}`, recharge-spent) {
			t.Fatalf("user %d: wallet %s, want balance %d", u, got, recharge-spent)
		}
	}
	if got := getOK(t, o.URL+"/v1/wallet", anchor); got != fmt.Sprintf(`{"balance":0,"income":%d}`, income) {
		t.Fatalf("anchor: %s, want income %d", got, income)
	}
	viewer := testenv.SignToken(t, o.Secret, 42, "")
	var lastBoard lazyString
	testenv.Wait(t, 60*time.Second, func() bool {
		lastBoard.s = getOK(t, o.URL+roomPath+"/leaderboard?limit=100", viewer)
		var lb struct {
			Items []struct {
				UserID uint64 `json:"user_id"`
				Score  uint64 `json:"score"`
			} `json:"items"`
		}
		_ = json.Unmarshal([]byte(lastBoard.s), &lb)
		got := map[uint64]int64{}
		for _, it := range lb.Items {
			got[it.UserID] = int64(it.Score)
		}
		lastBoard.diff = lastBoard.diff[:0]
		for u, w := range want {
			if got[u] != w {
				lastBoard.diff = append(lastBoard.diff, fmt.Sprintf("user %d: %d, charged %d", u, got[u], w))
			}
		}
		return len(lastBoard.diff) == 0 && len(got) == len(want)
	}, "the ranking to count every paid gift once; %v", &lastBoard)

	ch, err := chdb.Open(chdb.Config{Addr: o.ClickHouseAddr})
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	testenv.Wait(t, 60*time.Second, func() bool {
		var n uint64
		_ = ch.QueryRow(context.Background(), "SELECT count() FROM "+o.Database+".events WHERE type = 'gift'").Scan(&n)
		return n >= uint64(paid)
	}, "%d gift events in ClickHouse", paid)
	testenv.Wait(t, 60*time.Second, func() bool {
		var n uint64
		_ = ch.QueryRow(context.Background(), "SELECT count() FROM "+o.Database+".ledger").Scan(&n)
		return n >= 2*uint64(transfers)
	}, "%d ledger entries in ClickHouse", 2*transfers)
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"wallet", "reconcile", "--postgres-dsn", o.PostgresDSN,
		"--clickhouse-addr", o.ClickHouseAddr, "--clickhouse-database", o.Database}, &out, &errOut); code != 0 {
		t.Fatalf("reconcile exited %d:\n%s%s", code, out.String(), errOut.String())
	}
	t.Log(strings.TrimSpace(out.String()))
}

// lazyString formats what it holds when the message is printed.
type lazyString struct {
	s    string
	diff []string
}

func (l *lazyString) String() string { return strings.Join(l.diff, "; ") + "\nlast: " + l.s }

func sumOf(m map[uint64]int64) (s int64) {
	for _, v := range m {
		s += v
	}
	return s
}

// tryPost is do that reports a transport error instead of failing.
func tryPost(url, token string, body any) (int, string, error) {
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	rb, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(rb), err
}

// serveChild is a second `onair serve --roles api` process on o's
// Kafka, Redis, ClickHouse and PostgreSQL.
type serveChild struct {
	cmd  *exec.Cmd
	url  string
	done chan struct{}
}

func startServeChild(t *testing.T, o *testenv.Onair) *serveChild {
	t.Helper()
	cmd := exec.Command(testenv.OnairBinary(t), "serve", "--roles", "api", "--http-addr", "127.0.0.1:0",
		"--kafka-brokers", o.KafkaAddr, "--redis-addrs", o.RedisAddr, "--clickhouse-addr", o.ClickHouseAddr,
		"--clickhouse-database", o.Database, "--postgres-dsn", o.PostgresDSN, "--auth-secret", string(o.Secret),
		"--rate-limit", "0", "--node-id", "901", "--payment-provider", "dev", "--log-level", "info")
	cmd.Env = testenv.ChildEnv()
	log := &syncBuffer{}
	cmd.Stderr = log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &serveChild{cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(s.done) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-s.done })
	re := regexp.MustCompile(`msg="onair serving".* http=(\S+)`)
	testenv.Wait(t, 60*time.Second, func() bool {
		select {
		case <-s.done:
			t.Fatalf("onair serve exited; log:\n%s", log.tail())
		default:
		}
		if m := re.FindStringSubmatch(log.String()); m != nil {
			s.url = "http://" + m[1]
		}
		return s.url != ""
	}, "onair serve to log its address")
	return s
}

func (s *serveChild) kill(t *testing.T) {
	t.Helper()
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.done
}
