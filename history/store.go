// Package history owns users' play history and resume positions: the Redis
// layout, the rules for writing it (last write wins, deletes and clears that
// stick, pause, hide) and the reads, which fall back to ClickHouse beyond
// what Redis keeps.
//
// Redis layout, per user (all keys share the hash tag "{uid}", so one user's
// keys live on one Redis Cluster slot and every script touches one slot):
//
//	<prefix>h{uid}:t  ZSET timeline: member "biz:item" (biz as its number,
//	                  e.g. "1:123"), score = client ts (ms) of the last
//	                  update applied while not paused. Capped at MaxEntries.
//	<prefix>h{uid}:p  HASH progress: field "biz:item" → "ts,pos,dur,flags,posts,device"
//	                  (decimal; ts = updated_at; flags: "f" finished, "h"
//	                  hidden from continue; posts = ts of the report that
//	                  gave the position, 0 = none; device is everything
//	                  after the fifth comma, so it may hold commas).
//	                  Holds exactly the members of :t and :q.
//	<prefix>h{uid}:q  ZSET of items that have progress but are not in the
//	                  timeline (first played while history was paused), so
//	                  their progress entries are capped too.
//	<prefix>h{uid}:d  ZSET tombstones: member "biz:item" (delete) or "c:biz"
//	                  (clear of one biz; "c:0" = clear all), score = the
//	                  op's time in ms. Pruned after TombstoneTTL.
//	<prefix>h{uid}:m  HASH meta: "w" warm (Redis was filled from ClickHouse,
//	                  or there was nothing to fill), "x" trimmed (older
//	                  history exists only in ClickHouse), "ps" paused since
//	                  (ms), "day" last day Touch saw (YYYYMMDD), "v" version:
//	                  advanced by every script that changes the user's keys
//	                  (bump_version; the page cache compares it).
package history

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/singleflight"

	"github.com/onair/onair/ingest"
	"github.com/onair/onair/internal/chdb"
	"github.com/onair/onair/internal/promreg"
	"github.com/onair/onair/internal/refusal"
)

// TombstoneTTL is how long deletes and clears are kept in Redis. Ingest
// rejects events older than 30 days; the extra day covers aggregator lag.
// ClickHouse keeps them for good, so a re-warm restores the recent ones.
const TombstoneTTL = 31 * 24 * time.Hour

// An item of at least FinishedTailMinMs is also finished when the position
// is within FinishedTailMs of the end, because credits and outros are rarely
// played to the last frame. Shorter items use the ratio alone, or a 12 s clip
// would count as finished at 2 s.
const (
	FinishedTailMs    = 10_000
	FinishedTailMinMs = 60_000
)

// Limits of a History or Continue page.
const (
	DefaultLimit = 20
	MaxLimit     = 100
)

// DefaultMaxEntries is Config.MaxEntries's default, exported so that flags
// (cmd/onair) show the value that applies instead of repeating it.
const DefaultMaxEntries = 1000

// Config configures a Store. Zero values mean the documented defaults.
type Config struct {
	// Redis is required. Keys are hash-tagged by user, so a cluster client works.
	Redis redis.UniversalClient
	// Prefix starts every key, e.g. "onair:". Tests use a unique one each.
	Prefix string
	// ClickHouse is optional. nil means no pages beyond what Redis keeps, no
	// durable ops and no re-warm: Redis is then the only copy.
	ClickHouse driver.Conn
	// Database is the ClickHouse database; "" means "onair".
	Database string
	// MaxEntries caps each user's timeline in Redis; 0 means 1000.
	MaxEntries int
	// FinishedRatio: an item is finished when position >= ratio*duration, or
	// (for items of at least FinishedTailMinMs) position >= duration -
	// FinishedTailMs. 0 means 0.95.
	FinishedRatio float64
	// Location is the server time zone for Touch's "today"; nil means time.Local.
	Location *time.Location
	// Log receives warnings about data that could not be decoded; nil
	// discards them.
	Log *slog.Logger
	// PageCache is how many history pages to keep for reuse while their
	// user is unchanged (see pageCache); 0 means DefaultPageCache, negative
	// means no cache.
	PageCache int
	// Registerer receives the Store's metrics; nil means none.
	Registerer prometheus.Registerer
}

// Store reads and writes users' history. It is safe for concurrent use.
type Store struct {
	rdb    redis.UniversalClient
	ch     driver.Conn
	db     string
	prefix string
	max    int
	ratio  float64
	ratioS string
	loc    *time.Location
	log    *slog.Logger
	pages  *pageCache // nil: no page cache
	warmSF singleflight.Group
	warms  atomic.Int64 // loads from ClickHouse; tests check there is no stampede
	// withheld counts first_today answered false for a missing day marker
	// on the day of a Redis loss (see firstAfterLoss).
	withheld prometheus.Counter
}

// New validates cfg and returns a Store.
func New(cfg Config) (*Store, error) {
	if cfg.Redis == nil {
		return nil, errors.New("history: Config.Redis is required")
	}
	s := &Store{rdb: cfg.Redis, ch: cfg.ClickHouse, db: cfg.Database, prefix: cfg.Prefix,
		max: cfg.MaxEntries, ratio: cfg.FinishedRatio, loc: cfg.Location, log: cfg.Log}
	if s.db == "" {
		s.db = "onair"
	}
	if !chdb.ValidIdent(s.db) {
		return nil, fmt.Errorf("history: invalid ClickHouse database name %q", s.db)
	}
	if s.max == 0 {
		s.max = DefaultMaxEntries
	}
	if s.max < 1 {
		return nil, fmt.Errorf("history: MaxEntries %d must be positive", s.max)
	}
	if s.ratio == 0 {
		s.ratio = 0.95
	}
	if s.ratio <= 0 || s.ratio > 1 {
		return nil, fmt.Errorf("history: FinishedRatio %v must be in (0, 1]", s.ratio)
	}
	s.ratioS = strconv.FormatFloat(s.ratio, 'g', -1, 64)
	if s.loc == nil {
		s.loc = time.Local
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if cfg.PageCache == 0 {
		cfg.PageCache = DefaultPageCache
	}
	if cfg.PageCache > 0 {
		var err error
		if s.pages, err = newPageCache(cfg.PageCache, cfg.Registerer); err != nil {
			return nil, fmt.Errorf("history: register metrics: %w", err)
		}
	}
	s.withheld = prometheus.NewCounter(prometheus.CounterOpts{Name: "onair_history_first_today_withheld_total",
		Help: "first_today answered false because Redis lost the day marker today (or the loss is not handled yet): a missed bonus rather than a second one."})
	var err error
	if s.withheld, err = promreg.Register(cfg.Registerer, s.withheld); err != nil {
		return nil, fmt.Errorf("history: register metrics: %w", err)
	}
	return s, nil
}

// Finished reports whether an item counts as finished: position at or past
// FinishedRatio of the duration, or, for items of at least
// FinishedTailMinMs, within FinishedTailMs of the end. An
// unknown (zero) duration is never finished. The aggregator uses this for
// the progress table's finished column, so Redis and ClickHouse agree.
func (s *Store) Finished(positionMs, durationMs uint64) bool {
	if durationMs == 0 {
		return false
	}
	return float64(positionMs) >= s.ratio*float64(durationMs) ||
		(durationMs >= FinishedTailMinMs && positionMs+FinishedTailMs >= durationMs)
}

// Entry is a user's latest progress on one item.
type Entry struct {
	Biz        ingest.Biz
	ItemID     uint64
	PositionMs uint64
	DurationMs uint64
	Finished   bool
	// UpdatedAt is the client ts (Unix ms) of the newest applied report.
	UpdatedAt int64
	Device    string
}

// Key returns the entry's item key.
func (e Entry) Key() ItemKey { return ItemKey{Biz: e.Biz, ItemID: e.ItemID} }

// Update is one collapsed report from the aggregator: the newest per
// user+item in its window.
type Update struct {
	UserID     uint64
	Biz        ingest.Biz
	ItemID     uint64
	PositionMs uint64
	DurationMs uint64
	// TS is the client's Unix time in ms of the newest report; it decides
	// updated_at, the device and the timeline.
	TS     int64
	Device string
	// PosTS is the client time of the newest report that carried a non-zero
	// position (PositionMs, DurationMs); it decides the resume point. 0 with a
	// non-zero PositionMs means TS. The aggregator collapses a window into
	// these two maxima, which keeps the result independent of order.
	PosTS int64
	// EventID is carried for the aggregator's bookkeeping; ordering does not
	// use it because it does not change what is stored.
	EventID string
	// Play marks a "play" event: it refreshes updated_at and the timeline
	// but keeps the stored position and duration.
	Play bool
	// Cold is set by Apply when the user is not warm (never read, or the
	// keys were lost), or the item had no entry in a trimmed user
	// (ColdTrimmed): the stored state may then be only what was applied since,
	// and ClickHouse may hold older state it lacks (an older position under
	// a newer play). A user never read lacks nothing unless Redis lost data
	// (see Epoch); otherwise whoever writes the state to ClickHouse joins
	// it with what ClickHouse holds first.
	Cold, ColdTrimmed bool
}

// ItemKey names an item of one business line.
type ItemKey struct {
	Biz    ingest.Biz
	ItemID uint64
}

// String returns "audio:123", the form used by GET /v1/progress.
func (k ItemKey) String() string { return k.Biz.String() + ":" + strconv.FormatUint(k.ItemID, 10) }

// ParseItemKey parses "audio:123".
func ParseItemKey(s string) (ItemKey, error) {
	b, id, ok := strings.Cut(s, ":")
	biz, okb := ingest.ParseBiz(b)
	n, err := strconv.ParseUint(id, 10, 64)
	if !ok || !okb || err != nil || n == 0 {
		return ItemKey{}, refusal.Invalidf("items", "bad item key %q: want biz:item_id", s)
	}
	return ItemKey{Biz: biz, ItemID: n}, nil
}

// The caller's mistakes (Invalid refusals, HTTP 400 naming the field).
// Compare with errors.Is; every other caller mistake the store returns is
// a *refusal.Error too, so refusal.As reads the field of any of them.
var (
	ErrBadCursor = refusal.Invalidf("cursor", "malformed cursor")
	ErrBadLimit  = refusal.Invalidf("limit", "limit must be 1..100")
	ErrBadBiz    = refusal.Invalidf("biz", "unknown biz")
	ErrBadItem   = refusal.Invalidf("item_id", "item_id must be positive")
)

func checkBiz(biz ingest.Biz, allowAll bool) error {
	if (biz == 0 && !allowAll) || int(biz) > len(ingest.Bizes) {
		return ErrBadBiz
	}
	return nil
}

// member is the compact Redis member/field of an item: "1:123".
func member(biz ingest.Biz, item uint64) string {
	var b [24]byte
	out := strconv.AppendUint(b[:0], uint64(biz), 10)
	out = append(out, ':')
	out = strconv.AppendUint(out, item, 10)
	return string(out)
}

func parseMember(m string) (ItemKey, bool) {
	if len(m) < 3 || m[1] != ':' || m[0] < '1' || int(m[0]-'0') > len(ingest.Bizes) {
		return ItemKey{}, false
	}
	n, err := strconv.ParseUint(m[2:], 10, 64)
	if err != nil || n == 0 {
		return ItemKey{}, false
	}
	return ItemKey{Biz: ingest.Biz(m[0] - '0'), ItemID: n}, true
}

// userKeys are one user's keys in script order: t, p, q, d, m.
type userKeys [5]string

func (s *Store) keys(uid uint64) userKeys {
	base := s.prefix + "h{" + strconv.FormatUint(uid, 10) + "}:"
	return userKeys{base + "t", base + "p", base + "q", base + "d", base + "m"}
}

// decodeValue parses a progress hash value "ts,pos,dur,flags,device".
func decodeValue(k ItemKey, v string) (e Entry, hidden, ok bool) {
	e.Biz, e.ItemID = k.Biz, k.ItemID
	var f [5]string // ts, pos, dur, flags, posts; the device is the rest
	rest := v
	for i := range f {
		var found bool
		f[i], rest, found = strings.Cut(rest, ",")
		if !found {
			return e, false, false
		}
	}
	ts, err1 := strconv.ParseInt(f[0], 10, 64)
	pos, err2 := strconv.ParseUint(f[1], 10, 64)
	dur, err3 := strconv.ParseUint(f[2], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return e, false, false
	}
	e.UpdatedAt, e.PositionMs, e.DurationMs, e.Device = ts, pos, dur, rest
	e.Finished = strings.IndexByte(f[3], 'f') >= 0
	return e, strings.IndexByte(f[3], 'h') >= 0, true
}

// encodeValue is decodeValue's inverse (the Lua scripts build the same form).
func encodeValue(e Entry, hidden bool, posTS int64) string {
	b := make([]byte, 0, 48+len(e.Device))
	b = strconv.AppendInt(b, e.UpdatedAt, 10)
	b = append(b, ',')
	b = strconv.AppendUint(b, e.PositionMs, 10)
	b = append(b, ',')
	b = strconv.AppendUint(b, e.DurationMs, 10)
	b = append(b, ',')
	if e.Finished {
		b = append(b, 'f')
	}
	if hidden {
		b = append(b, 'h')
	}
	b = append(b, ',')
	b = strconv.AppendInt(b, posTS, 10)
	b = append(b, ',')
	b = append(b, e.Device...)
	return string(b)
}

// PauseFlag reads the pause flag as Touch does (one HGET, no re-warm): for
// a caller that knows it already touched the user today.
func (s *Store) PauseFlag(ctx context.Context, userID uint64) (bool, error) {
	n, err := s.rdb.HExists(ctx, s.keys(userID)[4], "ps").Result()
	if err != nil {
		return false, fmt.Errorf("history pause flag user %d: %w", userID, err)
	}
	return n, nil
}

// Touch is called by ingest after Kafka acknowledged a play/progress event.
// It records the user's calendar day (Config.Location) and reports whether
// this was the user's first accepted play/progress event that day, and
// whether history is paused. One round trip, two when the user has no
// day marker (see firstAfterLoss). After a loss of Redis the pause flag
// reads false until the user's next history read re-warms it.
func (s *Store) Touch(ctx context.Context, userID uint64, now time.Time) (firstToday, paused bool, err error) {
	k := s.keys(userID)
	day := now.In(s.loc).Format("20060102")
	r, err := touchScript.Run(ctx, s.rdb, k[4:5], day).Int64Slice()
	if err != nil {
		return false, false, fmt.Errorf("history touch user %d: %w", userID, err)
	}
	if len(r) != 2 {
		return false, false, fmt.Errorf("history touch user %d: unexpected reply %v", userID, r)
	}
	firstToday = r[0] == 1
	if r[0] == 2 {
		if firstToday, err = s.firstAfterLoss(ctx, day); err != nil {
			s.log.Warn("history touch: cannot tell a new user from a lost day marker; first_today false", "user", userID, "err", err)
		}
		if !firstToday {
			s.withheld.Inc()
		}
	}
	return firstToday, r[1] == 1, nil
}
