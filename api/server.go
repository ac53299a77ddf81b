// Package api is onair's HTTP front: a gin server that authenticates
// requests (JWT HS256), limits them per user (Redis), answers errors in one
// JSON shape, serves /healthz and /readyz (and, on a private ops listener,
// /metrics and the readiness detail), and hosts the handlers
// of api.md's "Events in" and "History" sections. Domain packages hold no
// HTTP: handlers read straight from the request into the domain decoders,
// and pass the domain's *refusal.Error on to WriteError. Every other domain
// mounts its routes with MountX(s, dep) (MountRadio, MountRooms,
// MountAccounts, MountAnalytics, MountPush) before Start.
package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/go-redis/redis_rate/v10"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/onair/onair/ingest"
	"github.com/onair/onair/internal/refusal"
)

// Config configures a Server. The zero value of every field but AuthSecret
// is usable; the comment of each field says what zero means.
type Config struct {
	// Addr is the listen address; "" = "127.0.0.1:8080". Port 0 picks a
	// free port (see Server.Addr).
	Addr string
	// ReadTimeout bounds the time a client has to send a request's headers
	// and body; past it the connection is closed. 0 = 30 s
	// (DefaultReadTimeout). A WebSocket upgrade is not cut by it: the
	// upgrader clears the deadline once it has hijacked the connection.
	ReadTimeout time.Duration
	// AuthSecret is the HS256 key tokens are signed with. Required; 32
	// random bytes or more is recommended.
	AuthSecret []byte
	// PreviousSecrets still verify tokens (by their kid) during a
	// rotation: a new AuthSecret signs, tokens signed with an old one keep
	// working until they expire or the old one is dropped from here.
	PreviousSecrets [][]byte
	// TokenCacheSize bounds the cache of verified tokens; 0 = 65536,
	// negative = no cache.
	TokenCacheSize int

	// Redis holds the per-user rate limits, so they hold across API nodes.
	// nil = no rate limiting.
	Redis redis.UniversalClient
	// RatePrefix is put in front of every rate-limit key (keys are
	// <RatePrefix>rate:<user id>); "" = none.
	RatePrefix string
	// RateLimit is the requests per second (and burst) allowed per user;
	// 0 = no rate limiting. onair's --rate-limit defaults to
	// DefaultRateLimit.
	RateLimit int
	// EventRate is the events per second a user token may post (POST
	// /v1/progress costs 1, a batch its size), with a burst of EventBurst:
	// the budget counts what costs Kafka and ClickHouse, not requests.
	// 0 = no event budget. onair's --event-rate defaults to
	// DefaultEventRate.
	EventRate int
	// EventBurst is the most events a user may post at once; it must hold
	// a full batch. 0 = max(EventRate, ingest.MaxBatchEvents).
	EventBurst int
	// ServiceEventRate is the event budget (per second, and burst) of each
	// service token. 0 = none. onair's --service-event-rate defaults to
	// DefaultServiceEventRate.
	ServiceEventRate int

	// Producer takes accepted events to Kafka. nil = POST /v1/progress and
	// POST /v1/events are not mounted.
	Producer Producer
	// History serves timelines and resume points. nil = the History routes
	// are not mounted and POST /v1/progress reports first_today false.
	History History

	// OpsAddr is the ops listener's address: /metrics, /readyz with each
	// failure's message, and what is mounted on Ops() (pprof). "" = no ops
	// listener (OpsHandler still serves it, e.g. for tests). onair's
	// --ops-addr defaults to DefaultOpsAddr, on 127.0.0.1.
	OpsAddr string

	// Ready lists the dependency checks /readyz runs.
	Ready []ReadyCheck
	// Registry receives the onair_api_* metrics and the Go and process
	// collectors; /metrics serves it. nil = a new registry.
	Registry *prometheus.Registry
	// Log receives request and error logs; nil = discard.
	Log *slog.Logger
	// Now is the clock for token expiry, ingest timestamps and the daily
	// Touch; nil = time.Now.
	Now func() time.Time
}

// Defaults of Config's zero values.
const (
	DefaultAddr        = "127.0.0.1:8080"
	DefaultOpsAddr     = "127.0.0.1:8081"
	DefaultReadTimeout = 30 * time.Second
	// HeaderTimeout bounds the time to send a request's headers.
	HeaderTimeout = 10 * time.Second
	// MaxHeaderBytes bounds a request's headers (a token is ~200 bytes).
	MaxHeaderBytes   = 16 << 10
	DefaultRateLimit = 200
	// DefaultEventRate: an app reports progress every few seconds and
	// sends an offline queue as a batch; 100 events/s with a burst of one
	// full batch is far above that, and 2 000× below what 200 requests of
	// 1 000 events allowed.
	DefaultEventRate        = 100
	DefaultServiceEventRate = 100_000
	DefaultTokenCacheSize   = 1 << 16
)

// Server is the HTTP API. Build it with New, add routes through V1, Admin
// or Router, then Start it; Shutdown stops it.
type Server struct {
	cfg     Config
	log     *slog.Logger
	now     func() time.Time
	engine  *gin.Engine
	v1      *gin.RouterGroup
	admin   *gin.RouterGroup
	tokens  *tokenCache
	keys    *keyring
	limiter *rateLimiter
	// events and serviceEvents are the event budgets of user and service
	// tokens; nil = none.
	events, serviceEvents *rateLimiter
	metrics               *metrics
	http                  *http.Server
	// ops serves /metrics, /readyz's detail and pprof on OpsAddr.
	ops     *gin.Engine
	opsHTTP *http.Server
	opsLn   net.Listener
	opsDone chan struct{}
	ready   readyProbes
	// touched saves Touch round trips for users already seen today.
	touched touchCache
	// touchLogged is when a Touch failure was last logged (unix ns).
	touchLogged atomic.Int64
	// ticketLogged is when a ticket's Redis failure was last logged.
	ticketLogged atomic.Int64
	faultLogs    *faultLogs

	mu      sync.Mutex
	ln      net.Listener
	started bool
	done    chan struct{} // closed when Serve returns
	// stopWatch ends the pause watcher; watchDone is closed when it has.
	stopWatch context.CancelFunc
	watchDone chan struct{}
}

// New validates cfg and builds a Server with every route of api.md's
// "Events in" and "History" sections (for the dependencies given), health,
// readiness and metrics.
func New(cfg Config) (*Server, error) {
	if len(cfg.AuthSecret) == 0 {
		return nil, errors.New("api: Config.AuthSecret is required")
	}
	if cfg.RateLimit < 0 || cfg.EventRate < 0 || cfg.ServiceEventRate < 0 {
		return nil, fmt.Errorf("api: Config.RateLimit, EventRate and ServiceEventRate must be >= 0, got %d, %d, %d", cfg.RateLimit, cfg.EventRate, cfg.ServiceEventRate)
	}
	if cfg.EventBurst == 0 {
		cfg.EventBurst = max(cfg.EventRate, ingest.MaxBatchEvents)
	}
	if cfg.EventBurst < ingest.MaxBatchEvents {
		return nil, fmt.Errorf("api: Config.EventBurst must hold a full batch (>= %d events), got %d", ingest.MaxBatchEvents, cfg.EventBurst)
	}
	for i, rc := range cfg.Ready {
		if rc.Name == "" || rc.Check == nil {
			return nil, fmt.Errorf("api: Config.Ready[%d] needs a Name and a Check", i)
		}
	}
	if cfg.Addr == "" {
		cfg.Addr = DefaultAddr
	}
	if cfg.ReadTimeout < 0 {
		return nil, fmt.Errorf("api: Config.ReadTimeout must be >= 0, got %s", cfg.ReadTimeout)
	}
	if cfg.ReadTimeout == 0 {
		cfg.ReadTimeout = DefaultReadTimeout
	}
	if cfg.TokenCacheSize == 0 {
		cfg.TokenCacheSize = DefaultTokenCacheSize
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	m, err := newMetrics(cfg.Registry)
	if err != nil {
		return nil, fmt.Errorf("api: register metrics: %w", err)
	}
	s := &Server{
		cfg:     cfg,
		log:     cfg.Log,
		now:     cfg.Now,
		metrics: m,
		tokens:  newTokenCache(cfg.TokenCacheSize),
		keys:    newKeyring(cfg.AuthSecret, cfg.PreviousSecrets),
		touched: touchCache{users: make(map[uint64]touched)},
		done:    make(chan struct{}),
	}
	s.faultLogs = newFaultLogs()
	if cfg.Redis != nil && cfg.RateLimit > 0 {
		s.limiter = newRateLimiter(cfg.Redis, cfg.RatePrefix, cfg.RateLimit)
	}
	if cfg.Redis != nil && cfg.EventRate > 0 {
		s.events = newBudget(cfg.Redis, cfg.RatePrefix, "ev:", "events",
			redis_rate.Limit{Rate: cfg.EventRate, Burst: cfg.EventBurst, Period: time.Second})
	}
	if cfg.Redis != nil && cfg.ServiceEventRate > 0 {
		n := max(cfg.ServiceEventRate, ingest.MaxBatchEvents)
		s.serviceEvents = newBudget(cfg.Redis, cfg.RatePrefix, "evs:", "events",
			redis_rate.Limit{Rate: cfg.ServiceEventRate, Burst: n, Period: time.Second})
	}

	// gin's debug mode prints every route to stdout; onair logs with slog.
	// The mode is process-wide, and api is onair's only gin user.
	gin.SetMode(gin.ReleaseMode)
	e := gin.New()
	e.HandleMethodNotAllowed = true
	e.ContextWithFallback = true
	e.Use(s.observe, s.recoverPanic, strictQuery)
	e.NoRoute(func(c *gin.Context) {
		WriteError(c, refusal.New(refusal.NotFound, "", "no route for %s", c.Request.URL.Path))
	})
	e.NoMethod(func(c *gin.Context) {
		WriteError(c, refusal.New(refusal.MethodNotAllowed, "", "method %s not allowed on %s", c.Request.Method, c.Request.URL.Path))
	})
	s.engine = e

	s.mountHealth()
	s.ops = s.newOps()
	s.v1 = e.Group("/v1", s.authenticate)
	if s.limiter != nil {
		s.v1.Use(s.rateLimit)
	}
	s.admin = s.v1.Group("/admin", requireRole(RoleAdmin))
	if cfg.Producer != nil {
		s.mountIngest()
	}
	if cfg.History != nil {
		s.mountHistory()
	}

	s.http = &http.Server{
		Handler: e,
		// A client that does not finish its headers within HeaderTimeout,
		// or headers and body within ReadTimeout, is cut off (issue 26:
		// stalled uploads held connections forever). gorilla's upgrader
		// clears the deadline of a hijacked WebSocket. No WriteTimeout: it
		// would cut long replies to slow readers that are still reading.
		ReadHeaderTimeout: min(HeaderTimeout, cfg.ReadTimeout),
		ReadTimeout:       cfg.ReadTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(cfg.Log.Handler(), slog.LevelWarn),
	}
	return s, nil
}

// Handler returns the server's handler (for httptest and embedding).
func (s *Server) Handler() http.Handler { return s.engine }

// Router returns the gin engine, for routes outside /v1.
func (s *Server) Router() *gin.Engine { return s.engine }

// V1 returns the /v1 group: every route on it requires a valid token and
// is rate limited per user. Handlers read the caller with ClaimsFrom.
func (s *Server) V1() *gin.RouterGroup { return s.v1 }

// Admin returns the /v1/admin group: like V1, and the token's role must be
// admin (else 403).
func (s *Server) Admin() *gin.RouterGroup { return s.admin }

// OnShutdown registers f to run when Shutdown starts, so long-lived
// connections (WebSocket) that Shutdown does not track can be closed.
func (s *Server) OnShutdown(f func()) { s.http.RegisterOnShutdown(f) }

// Start listens on Config.Addr and serves in the background. It returns at
// once with an error if the address cannot be bound (e.g. the port is
// taken).
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return errors.New("api: server already started")
	}
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("api: listen on %s: %w", s.cfg.Addr, err)
	}
	if err := s.startOps(); err != nil {
		ln.Close()
		return err
	}
	s.ln, s.started = ln, true
	s.warnUndocumented()
	if w, ok := s.cfg.History.(pauseWatcher); ok {
		ctx, cancel := context.WithCancel(context.Background())
		s.stopWatch, s.watchDone = cancel, make(chan struct{})
		go func() {
			defer close(s.watchDone)
			w.WatchPauses(ctx, s.onPauseNotice)
		}()
	}
	go func() {
		defer close(s.done)
		if err := s.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("api: serve failed", "addr", ln.Addr().String(), "err", err)
		}
	}()
	s.log.Info("api listening", "addr", ln.Addr().String())
	return nil
}

// Addr returns the bound address once started (the real port when
// Config.Addr had port 0), else Config.Addr.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil {
		return s.ln.Addr().String()
	}
	return s.cfg.Addr
}

// Shutdown stops accepting connections and waits for in-flight requests
// to finish. If ctx ends first, the remaining connections are closed and
// ctx's error is returned. Shutdown of a server never started is a no-op.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	started := s.started
	s.mu.Unlock()
	if !started {
		return nil
	}
	err := s.http.Shutdown(ctx)
	if err != nil {
		_ = s.http.Close()
	}
	<-s.done
	s.stopOps()
	if s.stopWatch != nil {
		s.stopWatch()
		<-s.watchDone
	}
	return err
}
