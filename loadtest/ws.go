package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/onair/onair/internal/authtoken"
	"github.com/onair/onair/rooms/wire"
)

// WSConfig configures `onair loadtest ws`: a swarm of WebSocket viewers in
// one room while danmaku are sent to it at a fixed rate.
type WSConfig struct {
	Target      string // onair's HTTP base URL
	Ops         string // onair's ops listener (/metrics, pprof)
	AllowRemote bool
	TokenSecret []byte
	Clients     int
	Room        uint64
	Rate        int // danmaku per second
	Duration    time.Duration
	// Source is how danmaku are sent: "api" posts them
	// (POST /v1/rooms/{id}/danmaku, latency from the request), "kafka"
	// produces the frames to the pushes topic as the room owner does
	// (latency from the produce call) and opens the room in Redis.
	Source      string
	Kafka       string // brokers, for Source kafka
	Redis       string // for Source kafka: where {r<room>}:room is written
	RedisPrefix string
	// Settle is how long to wait after the last send for deliveries.
	Settle time.Duration
	// Dialers is how many viewers connect at once.
	Dialers int
	// Baseline runs the swarm against a bare gorilla server in a process
	// of its own instead of onair (see wshello.go); no memory figure.
	Baseline bool
	Progress io.Writer
}

// WSSummary is the outcome of a ws run.
type WSSummary struct {
	Clients, Connected int
	ConnectTime        time.Duration
	Sent, SendErrors   int
	Expected           int64 // Sent × Connected
	Delivered          int64
	Duplicates         int64
	Lost               int64
	DeliveriesPerSec   float64 // deliveries over the sending duration plus the time to the last delivery
	P50, P90, P99, Max time.Duration
	// Server memory per connection: live heap and stacks (after the
	// server's last GC) and RSS, from /metrics before and after connecting.
	HeapStackPerConn, RSSPerConn float64
	// GCForced: the server ran with --pprof, a GC ran before each sample.
	GCForced     bool
	Disconnected int64 // viewers whose connection ended during the run
}

func parseWS(args []string, stderr io.Writer, getenv func(string) string, readFile func(string) ([]byte, error)) (WSConfig, error) {
	var cfg WSConfig
	var secret string
	fs := newFlagSet("ws", stderr)
	fs.StringVar(&cfg.Target, "target", DefaultTarget, "base URL of onair's HTTP API (the push role)")
	fs.StringVar(&cfg.Ops, "ops", DefaultOps, "base URL of onair's ops listener (--ops-addr: /metrics, pprof), for the server's memory")
	fs.BoolVar(&cfg.AllowRemote, "allow-remote", false, "allow non-loopback targets")
	fs.StringVar(&secret, "token-secret", "", "HS256 token secret (default $ONAIR_AUTH_SECRET, else "+SecretFile+")")
	fs.IntVar(&cfg.Clients, "clients", 1000, "WebSocket viewers")
	fs.Uint64Var(&cfg.Room, "room", 900001, "room id")
	fs.IntVar(&cfg.Rate, "rate", 20, "danmaku per second")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "how long to send danmaku")
	fs.StringVar(&cfg.Source, "source", "kafka", "kafka: produce frames to the pushes topic; api: open the room and POST /v1/rooms/{id}/danmaku from --rate users, each once a second (under the per-user danmaku rate)")
	fs.StringVar(&cfg.Kafka, "kafka", "127.0.0.1:19092", "Kafka brokers (--source kafka)")
	fs.StringVar(&cfg.Redis, "redis", "127.0.0.1:16379", "Redis address (--source kafka: the room is opened there)")
	fs.StringVar(&cfg.RedisPrefix, "redis-prefix", "onair:", "onair's Redis key prefix")
	fs.DurationVar(&cfg.Settle, "settle", 10*time.Second, "wait this long after the last send for deliveries")
	fs.IntVar(&cfg.Dialers, "dialers", 64, "viewers connecting at once")
	fs.BoolVar(&cfg.Baseline, "baseline", false, "run against a bare gorilla/websocket broadcaster (onair loadtest wshello, a process of its own) instead of onair: the same-run floor")
	if err := parseArgs(fs, args); err != nil {
		return cfg, err
	}
	var err error
	if cfg.TokenSecret, err = resolveSecret(secret, getenv, readFile); err != nil {
		return cfg, err
	}
	cfg.Progress = stderr
	switch {
	case cfg.Clients < 1:
		return cfg, fmt.Errorf("--clients must be >= 1, got %d", cfg.Clients)
	case cfg.Rate < 1:
		return cfg, fmt.Errorf("--rate must be >= 1 danmaku/s, got %d", cfg.Rate)
	case cfg.Duration <= 0 || cfg.Duration > MaxDuration:
		return cfg, fmt.Errorf("--duration must be > 0 and <= %s, got %s", MaxDuration, cfg.Duration)
	case cfg.Source != "kafka" && cfg.Source != "api":
		return cfg, fmt.Errorf("--source must be kafka or api, got %q", cfg.Source)
	case cfg.Room == 0:
		return cfg, errors.New("--room must be a positive room id")
	}
	cfg.Target = strings.TrimRight(cfg.Target, "/")
	return cfg, checkTarget(cfg.Target, cfg.AllowRemote)
}

// wsRun is one run's shared state.
type wsRun struct {
	cfg   WSConfig
	id    string
	sent  []atomic.Int64 // send time (unix ns) by message index
	lat   [latBuckets]atomic.Int64
	got   atomic.Int64
	dups  atomic.Int64
	ended atomic.Int64
	lastD atomic.Int64 // unix ns of the last delivery
}

// latBuckets: 1 ms buckets up to a minute.
const latBuckets = 60_001

// WS runs the swarm and returns its summary.
func WS(ctx context.Context, cfg WSConfig) (WSSummary, error) {
	raiseFileLimit()
	r := &wsRun{cfg: cfg, id: newRunID(), sent: make([]atomic.Int64, cfg.Rate*int(cfg.Duration/time.Second+1)+cfg.Rate)}
	s := WSSummary{Clients: cfg.Clients}
	var send func(int) error
	var before memSample
	if cfg.Baseline {
		target, snd, stop, err := r.startWSHello()
		if err != nil {
			return s, err
		}
		defer stop()
		r.cfg.Target, send = target, snd
	} else {
		snd, closeSend, err := r.sender(ctx)
		if err != nil {
			return s, err
		}
		defer closeSend()
		send = snd
		if before, err = serverMemory(ctx, strings.TrimRight(cfg.Ops, "/")); err != nil {
			return s, err
		}
	}
	t0 := time.Now()
	viewers := r.connect(ctx, r.cfg.Target)
	s.ConnectTime, s.Connected = time.Since(t0), len(viewers)
	fmt.Fprintf(cfg.Progress, "ws: %d of %d viewers connected in %s\n", len(viewers), cfg.Clients, s.ConnectTime.Round(time.Millisecond))
	defer func() {
		for _, v := range viewers {
			v.ws.Close()
		}
	}()
	if len(viewers) == 0 {
		return s, errors.New("no viewer could connect")
	}

	// Memory per idle connection: every viewer connected, nothing sent yet
	// (a second for the upgrades' goroutines to end).
	time.Sleep(time.Second)
	if !cfg.Baseline {
		after, err := serverMemory(ctx, strings.TrimRight(cfg.Ops, "/"))
		if err != nil {
			return s, err
		}
		n := float64(len(viewers))
		s.HeapStackPerConn = (after.heap + after.stack - before.heap - before.stack) / n
		s.RSSPerConn = (after.rss - before.rss) / n
		s.GCForced = before.forced && after.forced
	}

	start := time.Now()
	s.Sent, s.SendErrors = r.sendAll(ctx, send)
	s.Expected = int64(s.Sent) * int64(len(viewers))
	deadline := time.Now().Add(cfg.Settle)
	for r.got.Load() < s.Expected && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(50 * time.Millisecond)
	}
	s.Delivered, s.Duplicates, s.Disconnected = r.got.Load(), r.dups.Load(), r.ended.Load()
	s.Lost = s.Expected - s.Delivered
	if last := r.lastD.Load(); last > 0 {
		s.DeliveriesPerSec = float64(s.Delivered) / time.Unix(0, last).Sub(start).Seconds()
	}
	s.P50, s.P90, s.P99, s.Max = r.percentiles()
	return s, nil
}

// sender returns the function that sends message idx.
func (r *wsRun) sender(ctx context.Context) (func(idx int) error, func(), error) {
	cfg := r.cfg
	text := func(idx int) string { return "lt:" + r.id + ":" + strconv.Itoa(idx) }
	if cfg.Source == "api" {
		return r.apiSender(ctx, text)
	}
	rdb := redis.NewClient(&redis.Options{Addr: cfg.Redis})
	defer rdb.Close()
	roomKey := wire.Key(cfg.RedisPrefix, cfg.Room, wire.KindRoom)
	if err := rdb.HSetNX(ctx, roomKey, "status", "open").Err(); err != nil {
		return nil, nil, fmt.Errorf("cannot open room %d in Redis at %s: %w", cfg.Room, cfg.Redis, err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(cfg.Kafka, ",")...), kgo.DefaultProduceTopic("pushes"), kgo.ProducerLinger(0))
	if err != nil {
		return nil, nil, err
	}
	key := []byte(strconv.FormatUint(cfg.Room, 10))
	return func(idx int) error {
		v := fmt.Sprintf(`{"type":%q,"room_id":%d,"user_id":%d,"text":%q,"ts":%d,"id":"lt-%s-%d"}`,
			wire.TypeDanmaku, cfg.Room, ltSender, text(idx), time.Now().UnixMilli(), r.id, idx)
		r.sent[idx].Store(time.Now().UnixNano())
		return cl.ProduceSync(ctx, &kgo.Record{Key: key, Value: []byte(v)}).FirstErr()
	}, cl.Close, nil
}

// Load-test users: the anchor that opens the room (--source api), the
// senders (one per danmaku/s of --rate) and the viewers.
const (
	ltAnchor  = 999_000_000
	ltSender  = 999_000_001
	ltViewer0 = 1_000_000_000
)

// apiSender opens the room over the API (as its anchor) and returns a
// sender that POSTs /v1/rooms/{id}/danmaku. The danmaku come from Rate
// users in turn, each posting once a second: the API holds one user to
// --danmaku-rate per room (default 2/s), so a single sender would be
// refused with 429 above that.
func (r *wsRun) apiSender(ctx context.Context, text func(int) string) (func(int) error, func(), error) {
	cfg := r.cfg
	cl := &http.Client{Timeout: 5 * time.Second}
	post := func(u, tok, body string) error {
		req, _ := http.NewRequestWithContext(ctx, "POST", u, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		resp, err := cl.Do(req)
		if err != nil {
			return err
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			return fmt.Errorf("POST %s: HTTP %d %s", u, resp.StatusCode, b)
		}
		return nil
	}
	anchor, err := signWS(cfg.TokenSecret, ltAnchor)
	if err != nil {
		return nil, nil, err
	}
	id, err := r.anchorRoom(ctx, cl, anchor)
	if err != nil {
		return nil, nil, err
	}
	r.cfg.Room = id // the server allocates room ids; viewers join this one
	room := cfg.Target + "/v1/rooms/" + strconv.FormatUint(id, 10)
	if err := post(room+"/open", anchor, ""); err != nil {
		return nil, nil, fmt.Errorf("cannot open room %d: %w", id, err)
	}
	toks := make([]string, cfg.Rate)
	for i := range toks {
		if toks[i], err = signWS(cfg.TokenSecret, uint64(ltSender+i)); err != nil {
			return nil, nil, err
		}
	}
	return func(idx int) error {
		r.sent[idx].Store(time.Now().UnixNano())
		return post(room+"/danmaku", toks[idx%len(toks)], `{"text":"`+text(idx)+`"}`)
	}, func() {}, nil
}

// anchorRoom makes the load test's anchor an approved anchor (applying,
// then approving with an admin token signed with the same secret) and
// returns their room's id, creating it the first time.
func (r *wsRun) anchorRoom(ctx context.Context, cl *http.Client, anchor string) (uint64, error) {
	cfg := r.cfg
	admin, err := authtoken.Sign(cfg.TokenSecret, 1, "admin", time.Hour)
	if err != nil {
		return 0, err
	}
	call := func(path, tok, body string) ([]byte, error) {
		req, _ := http.NewRequestWithContext(ctx, "POST", cfg.Target+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		resp, err := cl.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 8<<10))
		if resp.StatusCode/100 != 2 {
			return nil, fmt.Errorf("POST %s: HTTP %d %s", path, resp.StatusCode, b)
		}
		return b, nil
	}
	if _, err := call("/v1/anchor/apply", anchor, `{"reason":"load test"}`); err != nil {
		return 0, err
	}
	if _, err := call("/v1/admin/anchors/"+strconv.FormatUint(ltAnchor, 10)+"/approve", admin, ""); err != nil {
		return 0, err
	}
	b, err := call("/v1/rooms", anchor, `{"title":"load test","category":"test"}`)
	if err != nil {
		return 0, err
	}
	var room struct {
		RoomID uint64 `json:"room_id"`
	}
	if err := json.Unmarshal(b, &room); err != nil || room.RoomID == 0 {
		return 0, fmt.Errorf("cannot read the room of POST /v1/rooms (%s): %v", b, err)
	}
	return room.RoomID, nil
}

// sendAll sends Rate danmaku per second for Duration, each on its own
// goroutine so a slow send does not delay the next.
func (r *wsRun) sendAll(ctx context.Context, send func(int) error) (sent, failed int) {
	total := r.cfg.Rate * int(r.cfg.Duration/time.Second)
	if total == 0 {
		total = 1
	}
	every := time.Second / time.Duration(r.cfg.Rate)
	var wg sync.WaitGroup
	var errs atomic.Int64
	start := time.Now()
	for i := 0; i < total && ctx.Err() == nil; i++ {
		time.Sleep(time.Until(start.Add(time.Duration(i) * every)))
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := send(i); err != nil {
				if errs.Add(1) == 1 {
					fmt.Fprintf(r.cfg.Progress, "ws: send failed: %v\n", err)
				}
				r.sent[i].Store(0)
			}
		}()
		sent++
	}
	wg.Wait()
	return sent - int(errs.Load()), int(errs.Load())
}

type wsViewer struct {
	ws   *websocket.Conn
	seen []uint64 // bitset of message indexes
}

// connect opens the viewers, Dialers at a time; each then reads on its
// own goroutine and pings every 20 s.
func (r *wsRun) connect(ctx context.Context, target string) []*wsViewer {
	cfg := r.cfg
	u := "ws" + strings.TrimPrefix(target, "http") + "/v1/ws?room=" + strconv.FormatUint(cfg.Room, 10)
	d := websocket.Dialer{ReadBufferSize: 2048, WriteBufferSize: 256, HandshakeTimeout: 30 * time.Second}
	var (
		mu      sync.Mutex
		viewers []*wsViewer
		next    atomic.Int64
		wg      sync.WaitGroup
		failed  atomic.Int64
	)
	for range max(1, cfg.Dialers) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= cfg.Clients {
					return
				}
				tok, err := signWS(cfg.TokenSecret, uint64(ltViewer0+i))
				if err != nil {
					failed.Add(1)
					continue
				}
				ws, _, err := d.DialContext(ctx, u, http.Header{"Authorization": {"Bearer " + tok}})
				if err != nil {
					if failed.Add(1) <= 3 {
						fmt.Fprintf(cfg.Progress, "ws: viewer %d cannot connect: %v\n", i, err)
					}
					continue
				}
				v := &wsViewer{ws: ws, seen: make([]uint64, len(r.sent)/64+1)}
				mu.Lock()
				viewers = append(viewers, v)
				mu.Unlock()
				go r.read(v)
				go ping(ctx, ws)
			}
		}()
	}
	wg.Wait()
	return viewers
}

var ltMarker = []byte(`"text":"lt:`)

// read counts the run's danmaku a viewer receives, by scanning for their
// text instead of decoding JSON (the swarm shares the cores with onair).
func (r *wsRun) read(v *wsViewer) {
	defer r.ended.Add(1)
	prefix := []byte(r.id + ":")
	var buf bytes.Buffer // reused: the swarm's garbage competes with onair for the cores
	for {
		_, rd, err := v.ws.NextReader()
		if err != nil {
			return
		}
		buf.Reset()
		if _, err := buf.ReadFrom(rd); err != nil {
			return
		}
		data := buf.Bytes()
		now := time.Now().UnixNano()
		for {
			i := bytes.Index(data, ltMarker)
			if i < 0 {
				break
			}
			data = data[i+len(ltMarker):]
			if !bytes.HasPrefix(data, prefix) {
				continue
			}
			rest := data[len(prefix):]
			end := bytes.IndexByte(rest, '"')
			idx, err := strconv.Atoi(string(rest[:max(end, 0)]))
			if err != nil || idx < 0 || idx >= len(r.sent) {
				continue
			}
			if v.seen[idx/64]&(1<<(idx%64)) != 0 {
				r.dups.Add(1)
				continue
			}
			v.seen[idx/64] |= 1 << (idx % 64)
			r.got.Add(1)
			r.lastD.Store(now)
			if t := r.sent[idx].Load(); t > 0 {
				ms := max(0, (now-t)/1e6)
				r.lat[min(ms, latBuckets-1)].Add(1)
			}
		}
	}
}

func ping(ctx context.Context, ws *websocket.Conn) {
	t := time.NewTicker(20 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"ping"}`)) != nil {
				return
			}
		}
	}
}

func (r *wsRun) percentiles() (p50, p90, p99, pmax time.Duration) {
	var total int64
	for i := range r.lat {
		total += r.lat[i].Load()
	}
	if total == 0 {
		return
	}
	at := func(q float64) time.Duration {
		want, n := int64(q*float64(total)+0.5), int64(0)
		for i := range r.lat {
			if n += r.lat[i].Load(); n >= max(want, 1) {
				return time.Duration(i) * time.Millisecond
			}
		}
		return 0
	}
	for i := len(r.lat) - 1; i >= 0; i-- {
		if r.lat[i].Load() > 0 {
			pmax = time.Duration(i) * time.Millisecond
			break
		}
	}
	return at(0.5), at(0.9), at(0.99), pmax
}

// signWS signs a plain user's token for the run (two hours: the longest
// ws scenario with its warm-up).
func signWS(secret []byte, user uint64) (string, error) {
	return authtoken.Sign(secret, user, "", 2*time.Hour)
}

// metricsClient reads the server's /metrics and forces its GC; a server out
// of file descriptors must not hang the run.
var metricsClient = &http.Client{Timeout: 30 * time.Second}

type memSample struct {
	heap, stack, rss float64
	forced           bool // a GC ran just before
}

// serverMemory reads the server's live heap, stacks and RSS from /metrics.
// A server run with --pprof is first made to collect garbage (the heap
// profile's ?gc=1), so the live heap is exact; without it the figure is
// as of the server's last GC (m.forced false).
func serverMemory(ctx context.Context, target string) (memSample, error) {
	var m memSample
	if req, err := http.NewRequestWithContext(ctx, "GET", target+"/debug/pprof/heap?gc=1", nil); err == nil {
		if resp, err := metricsClient.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			m.forced = resp.StatusCode == http.StatusOK
		}
	}
	g, err := readGauges(ctx, metricsClient, target, "onair_push_heap_live_bytes", "go_memstats_stack_inuse_bytes", "process_resident_memory_bytes")
	if err != nil {
		return memSample{}, err
	}
	heap, found := g["onair_push_heap_live_bytes"]
	if !found {
		return m, fmt.Errorf("%s/metrics has no onair_push_heap_live_bytes: is the push role running there?", target)
	}
	m.heap, m.stack, m.rss = heap, g["go_memstats_stack_inuse_bytes"], g["process_resident_memory_bytes"]
	return m, nil
}

// TextWS prints the summary.
func TextWS(w io.Writer, cfg WSConfig, s WSSummary) {
	via := cfg.Source
	if cfg.Baseline {
		via = "the bare gorilla baseline (wshello)"
	}
	fmt.Fprintf(w, "ws: %d viewers (%d connected in %s), room %d, %d danmaku/s for %s via %s\n",
		s.Clients, s.Connected, s.ConnectTime.Round(time.Millisecond), cfg.Room, cfg.Rate, cfg.Duration, via)
	fmt.Fprintf(w, "sent %d (%d failed); deliveries %d of %d expected, lost %d, duplicates %d, disconnected %d; %.0f deliveries/s\n",
		s.Sent, s.SendErrors, s.Delivered, s.Expected, s.Lost, s.Duplicates, s.Disconnected, s.DeliveriesPerSec)
	fmt.Fprintf(w, "latency (send -> received): p50 %s p90 %s p99 %s max %s\n", s.P50, s.P90, s.P99, s.Max)
	if cfg.Baseline {
		return
	}
	how := "after a forced GC"
	if !s.GCForced {
		how = "as of the server's last GC (run it with --pprof for an exact figure)"
	}
	fmt.Fprintf(w, "server memory per connection: live heap + stacks %.1f KB %s, RSS %.1f KB\n", s.HeapStackPerConn/1024, how, s.RSSPerConn/1024)
}

// raiseFileLimit lifts the open-files limit: every viewer is a socket. It
// asks for 100 000 (root may raise the hard limit), else the hard limit.
func raiseFileLimit() {
	const want = 100_000
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) != nil {
		return
	}
	if l.Max < want && syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: want, Max: want}) == nil {
		return
	}
	if l.Cur < l.Max {
		l.Cur = l.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	}
}
