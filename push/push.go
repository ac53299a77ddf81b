// Package push is onair's live-room gateway: viewers hold a WebSocket
// (GET /v1/ws?room=), every push node consumes every partition of the Kafka
// topic "pushes" (key = room id) and fans each room's frames out to the
// viewers it holds. A room's frames are merged every BatchInterval into one
// batch frame, encoded once per delivery level and written as the same
// prepared bytes to every connection; a slow connection steps down (no
// danmaku, then state only) and is finally closed, and never holds up the
// room. A joining or reconnecting viewer first gets a snapshot of the
// room's state from memory or Redis. DESIGN.md "Live rooms: push/" maps the
// files and invariants.
package push

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// Config configures a Gateway. Brokers and Redis are required; the zero
// value of every other field means the default its comment names.
type Config struct {
	// Brokers are the Kafka seed brokers of the pushes topic.
	Brokers []string
	// Topic is the topic of room frames; "" = "pushes".
	Topic string
	// Redis holds the rooms ({r<id>}:room), their state for snapshots
	// ({r<id>}:state, {r<id>}:recent) and the merged head-counts
	// ({r<id>}:online).
	Redis redis.UniversalClient
	// Prefix goes in front of every Redis key; "" = none.
	Prefix string
	// NodeID names this node in the head-count hashes; unique per Gateway.
	// "" = host:pid:random.
	NodeID string
	// AllowedOrigins are the browser origins allowed besides the page's
	// own (e.g. "https://app.example.com"); "*" allows any. nil = same
	// origin only. Requests without an Origin header (apps) are allowed.
	AllowedOrigins []string
	// BatchInterval is how often a room's frames are merged and sent;
	// 0 = 50 ms.
	BatchInterval time.Duration
	// QueueSize is the frames a connection may have waiting; at half of it
	// the connection loses danmaku, at three quarters it gets state only,
	// full it is closed (DisconnectSlow). 0 = 64.
	QueueSize int
	// ReadLimit is the largest client frame in bytes; 0 = 4096.
	ReadLimit int64
	// IdleTimeout closes a connection that sent nothing for this long
	// (DisconnectIdle); 0 = 45 s (clients ping every 30 s).
	IdleTimeout time.Duration
	// WriteTimeout bounds one write to a connection; 0 = 10 s.
	WriteTimeout time.Duration
	// AckTimeout is how long a gift frame waits for its ack before it is
	// re-sent (once); 0 = 2 s.
	AckTimeout time.Duration
	// OnlineInterval is how often head-counts are merged in Redis and
	// pushed to viewers; 0 = 3 s.
	OnlineInterval time.Duration
	// RecentSize is the danmaku a fresh snapshot carries; 0 = 50.
	RecentSize int
	// RingSize is the danmaku and gifts a room keeps in memory for
	// reconnects (?since=); 0 = 256.
	RingSize int
	// MaxDanmakuPerTick sheds a flooded room's danmaku beyond this many per
	// batch; 0 = 200.
	MaxDanmakuPerTick int
	// MaxConns refuses upgrades (503) beyond this many connections, so the
	// process keeps file descriptors for its own clients (Kafka, Redis,
	// an embedded broker). 0 = no limit.
	MaxConns int
	// MaxConnsPerUser refuses (429, field "user") an upgrade of a user who
	// already holds this many connections on this node. 0 = 5; < 0 = no
	// limit.
	MaxConnsPerUser int
	// MaxConnsPerUserCluster refuses (429, field "user") an upgrade of a
	// user who holds this many connections across every push node sharing
	// Redis ({u<id>}:ws). When Redis does not answer the check fails open
	// (counted, logged): the per-node limit still holds. 0 = 10; < 0 = no
	// limit (no Redis work at upgrade).
	MaxConnsPerUserCluster int
	// FrameRate and FrameBurst bound the frames (pings, acks) one
	// connection may send: a token bucket of FrameBurst refilled at
	// FrameRate per second; beyond it the connection is closed with
	// DisconnectTooManyFrames. 0 = 20 per second, burst 40.
	FrameRate  float64
	FrameBurst int
	// LogEvery is the least time between two log lines of one repeated
	// event (step-downs, closes of slow or misbehaving connections, refused
	// upgrades); each line carries how many it stands for, the metrics
	// count every one. 0 = 10 s.
	LogEvery time.Duration
	// ShutdownWindow spreads the closing of connections at shutdown, so
	// clients do not reconnect in a herd; 0 = 2 s.
	ShutdownWindow time.Duration
	// Registerer receives the onair_push_* metrics; nil means none.
	Registerer prometheus.Registerer
	// Log receives logs; nil discards them.
	Log *slog.Logger
}

// Defaults of Config's zero values.
const (
	DefaultBatchInterval     = 50 * time.Millisecond
	DefaultQueueSize         = 64
	DefaultReadLimit         = 4096
	DefaultIdleTimeout       = 45 * time.Second
	DefaultWriteTimeout      = 10 * time.Second
	DefaultAckTimeout        = 2 * time.Second
	DefaultOnlineInterval    = 3 * time.Second
	DefaultRecentSize        = 50
	DefaultRingSize          = 256
	DefaultMaxDanmakuPerTick = 200
	DefaultShutdownWindow    = 2 * time.Second
	// A user's devices and tabs: a phone and a desktop with a few tabs fit
	// in 5 on one node (a reconnect loop gone wrong cannot hold more of a
	// node than that) and 10 across nodes.
	DefaultMaxConnsPerUser        = 5
	DefaultMaxConnsPerUserCluster = 10
	// A client sends a ping every 30 s and an ack per gift frame: 20/s
	// with a burst of 40 is far above an honest client, even in a gift
	// storm, and stops a flood in 2 s of work at most.
	DefaultFrameRate  = 20
	DefaultFrameBurst = 40
	DefaultLogEvery   = 10 * time.Second
)

func (c *Config) setDefaults() error {
	if len(c.Brokers) == 0 {
		return errors.New("push: Config.Brokers is required")
	}
	if c.Redis == nil {
		return errors.New("push: Config.Redis is required")
	}
	if c.QueueSize < 0 || c.ReadLimit < 0 || c.MaxConns < 0 || c.RecentSize < 0 || c.RingSize < 0 || c.MaxDanmakuPerTick < 0 {
		return errors.New("push: Config sizes must be >= 0")
	}
	def := func(p *time.Duration, d time.Duration) {
		if *p <= 0 {
			*p = d
		}
	}
	defInt := func(p *int, d int) {
		if *p == 0 {
			*p = d
		}
	}
	def(&c.BatchInterval, DefaultBatchInterval)
	def(&c.IdleTimeout, DefaultIdleTimeout)
	def(&c.WriteTimeout, DefaultWriteTimeout)
	def(&c.AckTimeout, DefaultAckTimeout)
	def(&c.OnlineInterval, DefaultOnlineInterval)
	def(&c.ShutdownWindow, DefaultShutdownWindow)
	defInt(&c.QueueSize, DefaultQueueSize)
	defInt(&c.RecentSize, DefaultRecentSize)
	defInt(&c.RingSize, DefaultRingSize)
	defInt(&c.MaxDanmakuPerTick, DefaultMaxDanmakuPerTick)
	defInt(&c.MaxConnsPerUser, DefaultMaxConnsPerUser)
	defInt(&c.MaxConnsPerUserCluster, DefaultMaxConnsPerUserCluster)
	defInt(&c.FrameBurst, DefaultFrameBurst)
	def(&c.LogEvery, DefaultLogEvery)
	if c.FrameRate < 0 || c.FrameBurst < 0 {
		return errors.New("push: Config.FrameRate and FrameBurst must be >= 0")
	}
	if c.FrameRate == 0 {
		c.FrameRate = DefaultFrameRate
	}
	if c.QueueSize < 4 {
		return fmt.Errorf("push: Config.QueueSize must be >= 4 (it has three thresholds), got %d", c.QueueSize)
	}
	if c.RingSize < c.RecentSize {
		c.RingSize = c.RecentSize
	}
	if c.ReadLimit == 0 {
		c.ReadLimit = DefaultReadLimit
	}
	if c.Topic == "" {
		c.Topic = "pushes"
	}
	if c.NodeID == "" {
		host, _ := os.Hostname()
		c.NodeID = host + ":" + strconv.Itoa(os.Getpid()) + ":" + strconv.FormatUint(rand.Uint64()%1e6, 10)
	}
	if c.Log == nil {
		c.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return nil
}

// Gateway is a push node. Build it with New, Start it, serve upgrades with
// ServeWS, Shutdown it.
type Gateway struct {
	cfg      Config
	log      *slog.Logger
	m        *metrics
	hub      *hub
	personal *users // connections by user: the personal channel
	conns    *connSet
	upgrader websocket.Upgrader
	online   *onlineCounter
	users    *userConns
	cluster  *clusterConns
	logs     logSamplers

	stop    context.CancelFunc
	stopped sync.WaitGroup
}

// New validates cfg and builds a Gateway; nothing runs until Start.
func New(cfg Config) (*Gateway, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	g := &Gateway{cfg: cfg, log: cfg.Log, m: newMetrics(cfg.Registerer), conns: newConnSet(cfg.MaxConns)}
	for _, d := range disconnects { // every reason shows in /metrics, at 0 until it happens
		g.m.disconnects.WithLabelValues(d.Reason)
	}
	g.hub = newHub(g)
	g.online = newOnlineCounter(cfg.Redis, cfg.Prefix, 3*cfg.OnlineInterval)
	g.users = newUserConns(cfg.MaxConnsPerUser)
	g.cluster = newClusterConns(cfg.Redis, cfg.Prefix, cfg.NodeID, cfg.MaxConnsPerUserCluster, 3*cfg.OnlineInterval)
	g.logs = newLogSamplers(cfg.LogEvery)
	g.personal = newUsers()
	g.upgrader = websocket.Upgrader{
		// Small buffers and a shared write-buffer pool keep an idle
		// connection near 10 KB (BENCHMARKS.md); batches are written as
		// prepared messages, which bypass the write buffer.
		ReadBufferSize:  512,
		WriteBufferSize: 1024,
		WriteBufferPool: &sync.Pool{},
		// The origin is checked before Upgrade, with a JSON error.
		CheckOrigin: func(*http.Request) bool { return true },
	}
	return g, nil
}

// Start begins consuming the pushes topic from its end (a joining viewer
// gets older state from the snapshot) and the batch and head-count
// tickers. Frames produced after Start returns reach this node's viewers.
func (g *Gateway) Start(ctx context.Context) error {
	cons, err := newConsumer(ctx, g)
	if err != nil {
		return err
	}
	rctx, cancel := context.WithCancel(context.Background())
	g.stop = cancel
	g.stopped.Add(3)
	go func() { defer g.stopped.Done(); cons.run(rctx) }()
	go func() { defer g.stopped.Done(); g.hub.tickLoop(rctx) }()
	go func() { defer g.stopped.Done(); g.onlineLoop(rctx) }()
	return nil
}

// Shutdown refuses new upgrades, closes every connection with
// DisconnectShutdown spread over ShutdownWindow (or until ctx ends, then
// at once), stops consuming and removes this node's head-counts.
func (g *Gateway) Shutdown(ctx context.Context) error {
	closing := g.conns.closeAll(ctx, g.cfg.ShutdownWindow, func(c *client) { c.close(DisconnectShutdown) })
	if g.stop != nil {
		g.stop()
		g.stopped.Wait()
	}
	cctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := g.online.clear(cctx, g.hub.all(nil)); err != nil {
		g.log.Warn("push: cannot remove this node's head-counts", "err", err)
	}
	return closing
}

// Conns returns the number of open connections.
func (g *Gateway) Conns() int { return g.conns.len() }
