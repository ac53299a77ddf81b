package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/onair/onair/aggregate"
	"github.com/onair/onair/api"
	"github.com/onair/onair/history"
	"github.com/onair/onair/internal/kafka"
	"github.com/onair/onair/lifecycle"
	"github.com/onair/onair/rooms"
)

// knownRoles are the roles a process may run, in the order README.md's
// "Roles" section lists them; `onair dev` runs them all. serveRoles are
// `onair serve`'s default. TestREADMERolesAndUsage keeps README.md and the
// usage text in step with these.
var (
	knownRoles = []string{"api", "aggregate", "radio", "push"}
	serveRoles = []string{"api", "aggregate"}
)

// config is every setting of onair. Each flag also reads ONAIR_<NAME> from
// the environment (dashes become underscores); a flag given on the command
// line wins. README.md lists them all.
type config struct {
	HTTPAddr      string
	OpsAddr       string
	KafkaBrokers  []string
	Partitions    int
	RedisAddrs    []string
	RedisPassword secret
	RedisPrefix   string
	CHAddr        string
	CHDatabase    string
	CHUser        string
	CHPassword    secret
	PostgresDSN   secret
	AuthSecret    secret
	AuthPrevious  secret
	SMSWebhookURL string
	DataDir       string
	Roles         []string
	NodeID        int
	RateLimit     int
	EventRate     int
	EventBurst    int
	ServiceEvents int
	ReadTimeout   time.Duration
	RedisFlush    time.Duration
	CHFlush       time.Duration
	ProgressFlush time.Duration
	BatchRows     int
	HistoryMax    int
	PageCache     int
	DedupeWindow  time.Duration
	DanmakuRate   int
	StreamPush    string
	StreamPlay    string
	StreamKey     secret
	StreamTTL     time.Duration
	LogLevel      string
	Retention     time.Duration
	Pprof         bool
	MemoryLimit   string
	Push          pushConfig
	Wallet        walletConfig

	// secrets are the flags registered by secretVar, which redact masks.
	secrets []*secret
	// envErrs collects ONAIR_* variables that do not parse; validate reports them.
	envErrs        []error
	DevKafkaPort   int
	DevRedisPort   int
	DevCHPort      int
	DevCHHTTPPort  int
	DevPGPort      int
	DevKafkaSyncWr bool
}

// flags registers the settings on fs. dev selects the embedded defaults.
func (c *config) flags(fs *flag.FlagSet, dev bool) {
	str := func(p *string, name, def, usage string) { fs.StringVar(p, name, env(name, def), usage) }
	list := func(p *[]string, name, def, usage string) {
		*p = split(env(name, def))
		fs.Func(name, usage+" (comma-separated; default "+strconv.Quote(env(name, def))+")", func(s string) error { *p = split(s); return nil })
	}
	num := func(p *int, name string, def int, usage string) { fs.IntVar(p, name, c.envInt(name, def), usage) }
	dur := func(p *time.Duration, name string, def time.Duration, usage string) {
		fs.DurationVar(p, name, c.envDur(name, def), usage)
	}
	brokers, redis, ch := "", "", ""
	if dev {
		brokers, redis, ch = "127.0.0.1:19092", "127.0.0.1:16379", "127.0.0.1:19000"
	}
	str(&c.HTTPAddr, "http-addr", api.DefaultAddr, "HTTP API listen address")
	str(&c.OpsAddr, "ops-addr", api.DefaultOpsAddr, "private listen address of /metrics, /readyz with each failure's message and /debug/pprof/ (--pprof); keep it off public networks")
	list(&c.KafkaBrokers, "kafka-brokers", brokers, "Kafka seed brokers")
	num(&c.Partitions, "kafka-partitions", kafka.DefaultPartitions, "partitions of the topics onair creates when missing")
	list(&c.RedisAddrs, "redis-addrs", redis, "Redis address; several addresses mean Redis Cluster")
	c.secretVar(fs, &c.RedisPassword, "redis-password", "Redis `password`")
	str(&c.RedisPrefix, "redis-prefix", "onair:", "prefix of every Redis key")
	str(&c.CHAddr, "clickhouse-addr", ch, "ClickHouse native-protocol address")
	str(&c.CHDatabase, "clickhouse-database", "onair", "ClickHouse database")
	str(&c.CHUser, "clickhouse-user", "default", "ClickHouse user")
	c.secretVar(fs, &c.CHPassword, "clickhouse-password", "ClickHouse `password`")
	if !dev { // onair dev runs its own PostgreSQL
		c.secretVar(fs, &c.PostgresDSN, "postgres-dsn", "PostgreSQL `dsn` (postgres://user:password@host:5432/onair), the system of record for people and rooms; required by the api role")
	}
	str(&c.SMSWebhookURL, "sms-webhook-url", "", "SMS gateway webhook: sign-in codes are POSTed there as JSON {phone, code, text} (none: sign-in by SMS needs --dev-login)")
	c.secretVar(fs, &c.AuthSecret, "auth-secret", "HS256 `secret` of bearer tokens (dev: var/auth.secret when empty)")
	c.secretVar(fs, &c.AuthPrevious, "auth-previous-secrets", "comma-separated HS256 `secrets` that still verify tokens during a rotation (tokens name their key by kid); the new one goes in --auth-secret")
	str(&c.DataDir, "data-dir", "var", "runtime data directory (dev: Kafka, Redis, ClickHouse and PostgreSQL data)")
	roles := strings.Join(serveRoles, ",")
	if dev {
		roles = strings.Join(knownRoles, ",")
	}
	list(&c.Roles, "roles", roles, "roles to run: "+strings.Join(knownRoles, ", "))
	num(&c.NodeID, "node-id", -1, "node id in [0,1024) for server-assigned event ids, leased from PostgreSQL (refused when another live process holds it); -1 leases a free one")
	num(&c.RateLimit, "rate-limit", api.DefaultRateLimit, "requests per second per user (0 = off)")
	num(&c.EventRate, "event-rate", api.DefaultEventRate, "events per second a user token may post: a batch costs its size (0 = off)")
	num(&c.EventBurst, "event-burst", 0, "events a user token may post at once; at least a full batch, 1000 (0 = the larger of 1000 and --event-rate)")
	num(&c.ServiceEvents, "service-event-rate", api.DefaultServiceEventRate, "events per second (and burst) of each service token (0 = off)")
	dur(&c.ReadTimeout, "http-read-timeout", api.DefaultReadTimeout, "a client must send a request's headers and body within this (headers within 10 s); WebSocket connections are not cut by it")
	dur(&c.RedisFlush, "redis-flush", aggregate.DefaultRedisFlush, "aggregator write-back interval to Redis")
	dur(&c.CHFlush, "clickhouse-flush", aggregate.DefaultClickHouseFlush, "aggregator batch interval to ClickHouse")
	dur(&c.ProgressFlush, "progress-flush", aggregate.DefaultProgressFlush, "aggregator holds and collapses onair.progress rows this long (Redis is not delayed)")
	num(&c.BatchRows, "batch-rows", aggregate.DefaultBatchRows, "aggregator flushes ClickHouse early at this many buffered events")
	num(&c.HistoryMax, "history-max-entries", history.DefaultMaxEntries, "timeline entries kept in Redis per user; older pages come from ClickHouse")
	num(&c.PageCache, "history-page-cache", history.DefaultPageCache, "history pages kept per API node, each served again only while Redis confirms its user unchanged (0 = off)")
	dur(&c.DedupeWindow, "dedupe-window", aggregate.DefaultDedupeWindow, "how long a client event_id is remembered for retries")
	num(&c.DanmakuRate, "danmaku-rate", rooms.DefaultDanmakuRate, "danmaku per second a user may send in one room (burst 3x; negative = off)")
	str(&c.StreamPush, "stream-push-url", "rtmp://127.0.0.1/live/{stream}", "anchors' push URL `template`; {stream} is the room's stream (room<id>), signed with --stream-key (empty = no push_url)")
	str(&c.StreamPlay, "stream-play-url", "http://127.0.0.1:8088/live/{stream}.flv", "viewers' play URL `template`, as --stream-push-url (empty = no play_url)")
	c.secretVar(fs, &c.StreamKey, "stream-key", "HMAC-SHA256 `key` signing stream URLs: sign = hex(HMAC(key, stream + expires)); empty = a random key per process (URLs no media server can check)")
	dur(&c.StreamTTL, "stream-url-ttl", rooms.DefaultStreamTTL, "how long a signed stream URL stays valid")
	str(&c.LogLevel, "log-level", "info", "debug, info, warn or error")
	dur(&c.Retention, "retention", 0, "aggregate: drop whole months of onair.events and its rollups once they are older than this (at least 744h = 31 days; 0 = keep everything)")
	fs.BoolVar(&c.Pprof, "pprof", c.envBool("pprof", false), "serve /debug/pprof/ on the --ops-addr listener (profiling)")
	memDefault := "off (else GOMEMLIMIT, else 90% of the cgroup's memory.max)"
	if dev {
		memDefault = "1536MiB unless GOMEMLIMIT or a cgroup limit is set"
	}
	str(&c.MemoryLimit, "memory-limit", "", "soft memory limit of the process, e.g. 1536MiB, 2GiB or off (default "+memDefault+")")
	c.Push.flags(fs, dev, c)
	c.Wallet.flags(fs, c, dev)
	if dev {
		num(&c.DevKafkaPort, "dev-kafka-port", 19092, "dev: embedded Kafka port")
		num(&c.DevRedisPort, "dev-redis-port", 16379, "dev: child redis-server port")
		num(&c.DevCHPort, "dev-clickhouse-port", 19000, "dev: child clickhouse-server native port")
		num(&c.DevCHHTTPPort, "dev-clickhouse-http-port", 18123, "dev: child clickhouse-server HTTP port")
		num(&c.DevPGPort, "dev-postgres-port", 15432, "dev: child postgres port")
		fs.BoolVar(&c.DevKafkaSyncWr, "dev-kafka-sync-writes", c.envBool("dev-kafka-sync-writes", false), "dev: fsync every Kafka write (survives power loss; slower)")
	}
}

func (c *config) validate() error {
	if len(c.envErrs) > 0 {
		return errors.Join(c.envErrs...)
	}
	for _, r := range c.Roles {
		if !slices.Contains(knownRoles, r) {
			return fmt.Errorf("unknown role %q (want %s)", r, strings.Join(knownRoles, ", "))
		}
	}
	switch {
	case len(c.KafkaBrokers) == 0:
		return fmt.Errorf("no Kafka brokers: pass --kafka-brokers or set ONAIR_KAFKA_BROKERS")
	case len(c.RedisAddrs) == 0:
		return fmt.Errorf("no Redis: pass --redis-addrs or set ONAIR_REDIS_ADDRS")
	case c.CHAddr == "":
		return fmt.Errorf("no ClickHouse: pass --clickhouse-addr or set ONAIR_CLICKHOUSE_ADDR")
	case c.NodeID < -1 || c.NodeID >= 1024:
		return fmt.Errorf("--node-id %d out of range [0,1024) (or -1: lease a free one)", c.NodeID)
	case c.Partitions <= 0:
		return fmt.Errorf("--kafka-partitions must be positive, got %d", c.Partitions)
	case c.Retention != 0 && c.Retention < lifecycle.MinRetention:
		return fmt.Errorf("--retention %s is shorter than %s (31 days: months are dropped whole); 0 keeps everything", c.Retention, lifecycle.MinRetention)
	case c.PageCache < 0:
		return fmt.Errorf("--history-page-cache must be >= 0 pages (0 = off), got %d", c.PageCache)
	case c.PostgresDSN == "" && c.has("api"):
		return fmt.Errorf("no PostgreSQL: the api role needs one; pass --postgres-dsn or set ONAIR_POSTGRES_DSN")
	}
	return nil
}

func (c *config) has(role string) bool {
	for _, r := range c.Roles {
		if r == role {
			return true
		}
	}
	return false
}

func envName(flag string) string {
	return "ONAIR_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

func env(name, def string) string {
	if v, ok := os.LookupEnv(envName(name)); ok {
		return v
	}
	return def
}

func (c *config) envInt(name string, def int) int {
	return envParse(c, name, def, strconv.Atoi, "an integer")
}

func (c *config) envDur(name string, def time.Duration) time.Duration {
	return envParse(c, name, def, time.ParseDuration, "a duration (e.g. 100ms, 30s)")
}

func (c *config) envBool(name string, def bool) bool {
	return envParse(c, name, def, strconv.ParseBool, "a boolean")
}

// envParse reads ONAIR_<name> with parse; unset or empty means def. A value
// parse refuses is recorded in c.envErrs (validate reports it)
// and def is used meanwhile.
func envParse[T any](c *config, name string, def T, parse func(string) (T, error), want string) T {
	s := env(name, "")
	if s == "" {
		return def
	}
	v, err := parse(s)
	if err != nil {
		c.envErrs = append(c.envErrs, fmt.Errorf("%s=%q: not %s", envName(name), s, want))
		return def
	}
	return v
}

func split(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
