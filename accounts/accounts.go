// Package accounts is onair's people: users in PostgreSQL (a server-
// allocated id, a unique E.164 phone only its owner sees, a nickname and an
// avatar), sign-in by SMS code (codes stored hashed, one per phone per
// minute, five tries), sessions of a 1-hour access token (internal/authtoken)
// and a rotating refresh token (stored hashed), and Names: the nickname
// lookup rooms and push use to name people in frames and rankings, cached
// per node and in Redis in front of PostgreSQL.
//
// The HTTP routes are api's (api/accounts.go); this package holds no HTTP
// but the SMS webhook client. Refusals are *refusal.Error naming the field.
package accounts

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/onair/onair/internal/idseg"
	"github.com/onair/onair/internal/logsample"
	"github.com/onair/onair/internal/pgdb"
	"github.com/onair/onair/internal/promreg"
	"github.com/onair/onair/internal/refusal"
)

// Config configures New. DB and Secret are required; every other zero
// value means the default its comment names.
type Config struct {
	// DB is the system of record (migrations 0010–0029). Required.
	DB *pgdb.DB
	// Secret is the HS256 key of access tokens (the API's auth secret) and
	// the HMAC key codes and phones are hashed with. Required.
	Secret []byte
	// Redis holds the hot copy of profiles ({u<id>}:profile) that Names
	// reads; nil = Names reads PostgreSQL behind its per-node cache.
	Redis redis.UniversalClient
	// Prefix goes in front of every Redis key; "" = none.
	Prefix string
	// SMS sends codes; nil = no gateway: SendCode refuses (503) unless
	// DevCodes is set.
	SMS SMSSender
	// DevCodes puts the code in SendCode's answer (the reply's dev_code)
	// and in the log: `onair dev` and `serve --dev-login`. Never on a
	// public deployment: anyone could sign in as anyone.
	DevCodes bool
	// UserIDStart is the first user id; 0 = 1000001.
	UserIDStart int64
	// AccessTTL is an access token's life; 0 = 1 h.
	AccessTTL time.Duration
	// RefreshTTL is a refresh token's life; 0 = 30 days.
	RefreshTTL time.Duration
	// CodeTTL is an SMS code's life; 0 = 5 min.
	CodeTTL time.Duration
	// CodeInterval is the least time between two codes of one phone;
	// 0 = 60 s.
	CodeInterval time.Duration
	// MaxTries is how many wrong codes void a code; 0 = 5.
	MaxTries int
	// NamesTTL is how long a node trusts a nickname it read (the staleness
	// bound of frames after a change); 0 = 2 s.
	NamesTTL time.Duration
	// NamesSize bounds the per-node nickname cache; 0 = 100 000.
	NamesSize int
	// Registerer receives the onair_accounts_* metrics; nil = none.
	Registerer prometheus.Registerer
	// Log receives logs; nil = discard.
	Log *slog.Logger
	// Now is the clock of codes and tokens; nil = time.Now.
	Now func() time.Time
}

// Defaults of Config's zero values.
const (
	DefaultUserIDStart  = 1000001
	DefaultAccessTTL    = time.Hour
	DefaultRefreshTTL   = 30 * 24 * time.Hour
	DefaultCodeTTL      = 5 * time.Minute
	DefaultCodeInterval = time.Minute
	DefaultMaxTries     = 5
	DefaultNamesTTL     = 2 * time.Second
	DefaultNamesSize    = 100_000
)

// Service is one node's handle on accounts. It is safe for concurrent use.
type Service struct {
	cfg   Config
	db    *pgdb.DB
	log   *slog.Logger
	m     *metrics
	ids   *idseg.Allocator
	names *Names
	// failLog keeps an outage of PostgreSQL or Redis from logging every
	// request (metrics count each one).
	failLog logsample.Sampler
}

// ErrNoGateway is SendCode's refusal when no SMS gateway is configured and
// dev codes are off.
var ErrNoGateway = &refusal.Error{Kind: refusal.Unavailable, Reason: "no_sms_gateway",
	Message: "sign-in by SMS is not configured on this server (no SMS gateway: --sms-webhook-url)"}

// New validates cfg, creates the user id sequence when needed and returns
// a Service.
func New(ctx context.Context, cfg Config) (*Service, error) {
	switch {
	case cfg.DB == nil:
		return nil, errors.New("accounts: Config.DB is required")
	case len(cfg.Secret) == 0:
		return nil, errors.New("accounts: Config.Secret is required")
	case cfg.MaxTries < 0 || cfg.NamesSize < 0:
		return nil, errors.New("accounts: Config.MaxTries and NamesSize must be >= 0")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.AccessTTL, DefaultAccessTTL)
	def(&cfg.RefreshTTL, DefaultRefreshTTL)
	def(&cfg.CodeTTL, DefaultCodeTTL)
	def(&cfg.CodeInterval, DefaultCodeInterval)
	def(&cfg.NamesTTL, DefaultNamesTTL)
	if cfg.MaxTries == 0 {
		cfg.MaxTries = DefaultMaxTries
	}
	if cfg.NamesSize == 0 {
		cfg.NamesSize = DefaultNamesSize
	}
	if cfg.UserIDStart <= 0 {
		cfg.UserIDStart = DefaultUserIDStart
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, fmt.Errorf("accounts: register metrics: %w", err)
	}
	ids, err := idseg.New(ctx, idseg.Config{DB: cfg.DB, Name: "users", Start: cfg.UserIDStart, Step: 100, Log: cfg.Log})
	if err != nil {
		return nil, fmt.Errorf("accounts: %w", err)
	}
	s := &Service{cfg: cfg, db: cfg.DB, log: cfg.Log, m: m, ids: ids, failLog: logsample.Sampler{Every: time.Second}}
	s.names = newNames(s)
	return s, nil
}

// Names is the nickname lookup of this Service (rooms' and push's).
func (s *Service) Names() *Names { return s.names }

// DevCodes reports whether SendCode answers the code (dev sign-in).
func (s *Service) DevCodes() bool { return s.cfg.DevCodes }

func (s *Service) now() time.Time { return s.cfg.Now() }

// mac is HMAC-SHA256 under the secret of the parts, each length-prefixed
// so that ("ab","c") and ("a","bc") differ.
func (s *Service) mac(parts ...string) []byte {
	h := hmac.New(sha256.New, s.cfg.Secret)
	for _, p := range parts {
		var n [2]byte
		n[0], n[1] = byte(len(p)>>8), byte(len(p))
		h.Write(n[:])
		h.Write([]byte(p))
	}
	return h.Sum(nil)
}

// unavailable is the refusal of a failed PostgreSQL or Redis call: logged
// and counted under dep, answered 503.
func (s *Service) unavailable(dep, op string, err error) *refusal.Error {
	s.m.failures.WithLabelValues(dep).Inc()
	if n, ok := s.failLog.Due(); ok {
		s.log.Warn("accounts: "+op+" failed", "dep", dep, "occurrences", n, "err", err)
	}
	return refusal.UnavailableFor(dep, op+" is unavailable; retry")
}

type metrics struct {
	codes    *prometheus.CounterVec // result
	logins   *prometheus.CounterVec // result
	refresh  *prometheus.CounterVec // result
	failures *prometheus.CounterVec // dep
	names    *prometheus.CounterVec // source
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		codes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "onair_accounts_sms_codes_total",
			Help: "SMS code requests, by result (sent, dev, too_soon, failed)."}, []string{"result"}),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "onair_accounts_logins_total",
			Help: "Sign-ins by code, by result (ok, new_user, wrong_code, void, no_code)."}, []string{"result"}),
		refresh: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "onair_accounts_refresh_total",
			Help: "Refresh-token uses, by result (ok, unknown, reused = a spent token again: its family is revoked, logout)."}, []string{"result"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "onair_accounts_failures_total",
			Help: "Failed PostgreSQL, Redis, SMS gateway or signing calls, by dependency."}, []string{"dep"}),
		names: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "onair_accounts_names_total",
			Help: "Nickname lookups, by where they were answered (local, redis, postgres, fallback)."}, []string{"source"}),
	}
	var errs []error
	for _, p := range []**prometheus.CounterVec{&m.codes, &m.logins, &m.refresh, &m.failures, &m.names} {
		c, err := promreg.Register(reg, *p)
		*p = c
		errs = append(errs, err)
	}
	return m, errors.Join(errs...)
}
