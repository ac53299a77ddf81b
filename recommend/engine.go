package recommend

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/onair/onair/internal/refusal"
)

// Config configures an Engine. Brokers is required; every other zero value
// is usable and its comment says what it means.
type Config struct {
	// Brokers are the Kafka seed brokers.
	Brokers []string
	// Producer writes catalog changes; nil = a client of the Engine's own.
	Producer *kgo.Client
	// Topic is the catalog topic; "" = "catalog". Partitions is its
	// partition count when the Engine creates it; 0 = 8.
	Topic      string
	Partitions int
	// EventsTopic is where play, skip and progress events arrive; "" =
	// "events".
	EventsTopic string
	// Group prefixes the consumer groups (<Group>-listeners for listener
	// state, <Group>-catalog for onair.catalog rows); "" = "onair-radio".
	Group string
	// Redis holds listener state (finished, skipped, affinity). nil = no
	// personalisation: every listener gets the public playlist.
	Redis redis.UniversalClient
	// Prefix is put in front of every Redis key.
	Prefix string
	// ClickHouse receives onair.catalog rows and, when the analytics
	// rollup user_affinity exists, is read in the background for affinity;
	// nil = neither. Database is the database; "" = "onair".
	ClickHouse driver.Conn
	Database   string
	// Registerer receives the onair_recommend_* metrics; nil = none.
	Registerer prometheus.Registerer
	// Log receives failures; nil = discard.
	Log *slog.Logger
	// Now is the clock of schedules; nil = time.Now.
	Now func() time.Time
	// Debounce is how long a station's mailbox waits after a wake-up for
	// the rest of a burst; 0 = 20ms, negative = not at all.
	Debounce time.Duration
	// ExcludeFor is how long a finished or skipped item stays out of a
	// listener's playlists; 0 = 7 days.
	ExcludeFor time.Duration
	// AffinityEvery is how often the analytics rollup user_affinity is
	// copied to Redis for the listeners served meanwhile (affinity.go);
	// 0 = 5 minutes.
	AffinityEvery time.Duration
}

// Engine is a node's smart radio. New, then Start (which catches up with
// the catalog topic before it returns), then serve; Stop ends it.
type Engine struct {
	cfg      Config
	log      *slog.Logger
	m        *metrics
	actors   *stationActors
	producer *kgo.Client
	ownProd  bool
	follower *follower
	listen   *listener
	sink     *catalogSink
	seen     seenListeners
	results  resultCache

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New validates cfg and builds an Engine.
func New(cfg Config) (*Engine, error) {
	if len(cfg.Brokers) == 0 {
		return nil, errors.New("recommend: Config.Brokers is required")
	}
	if cfg.Topic == "" {
		cfg.Topic = "catalog"
	}
	if cfg.EventsTopic == "" {
		cfg.EventsTopic = "events"
	}
	if cfg.Partitions == 0 {
		cfg.Partitions = 8
	}
	if cfg.Group == "" {
		cfg.Group = "onair-radio"
	}
	if cfg.Database == "" {
		cfg.Database = "onair"
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Debounce == 0 {
		cfg.Debounce = 20 * time.Millisecond
	}
	if cfg.ExcludeFor == 0 {
		cfg.ExcludeFor = 7 * 24 * time.Hour
	}
	if cfg.AffinityEvery == 0 {
		cfg.AffinityEvery = 5 * time.Minute
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	e := &Engine{cfg: cfg, log: cfg.Log, m: m, producer: cfg.Producer}
	e.actors = newStationActors(cfg.Log, m, cfg.Now, max(cfg.Debounce, 0))
	if e.producer == nil {
		if e.producer, err = kgo.NewClient(kgo.SeedBrokers(cfg.Brokers...), kgo.ProducerLinger(0)); err != nil {
			return nil, fmt.Errorf("recommend: producer: %w", err)
		}
		e.ownProd = true
	}
	return e, nil
}

// Start makes the catalog topic compacted, reads it to its end (so the
// node serves the whole catalog from its first request), then follows it
// and, with Redis, the listener events; with ClickHouse, it writes
// onair.catalog.
func (e *Engine) Start(ctx context.Context) error {
	// A broker that refuses to create or alter topics (ACLs) may still
	// hold a catalog topic made by its operators: go on, and let the
	// catch-up fail if there is none.
	if err := EnsureCatalogTopic(ctx, e.producer, e.cfg.Topic, e.cfg.Partitions); err != nil {
		e.m.errors.WithLabelValues("topic").Inc()
		e.log.Warn("catalog topic not ensured compacted", "topic", e.cfg.Topic, "err", err)
	}
	f, err := e.newFollower()
	if err != nil {
		return err
	}
	if err := f.catchUp(ctx); err != nil {
		f.cl.Close()
		return err
	}
	e.follower = f
	rctx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	e.goRun(func() { f.run(rctx) })
	if e.cfg.Redis != nil {
		if e.listen, err = e.newListener(); err != nil {
			cancel()
			return err
		}
		e.goRun(func() { e.listen.run(rctx) })
		// Feedback counts from the moment Start returns: wait (bounded) for
		// the group to own the events partitions.
		select {
		case <-e.listen.assigned:
		case <-ctx.Done():
		case <-time.After(15 * time.Second):
			e.log.Warn("listener consumer not assigned after 15 s; feedback starts once it is")
		}
	}
	if e.cfg.ClickHouse != nil {
		if e.sink, err = e.newCatalogSink(); err != nil {
			cancel()
			return err
		}
		e.goRun(func() { e.sink.run(rctx) })
		if e.cfg.Redis != nil {
			e.goRun(func() { e.runAffinity(rctx) })
		}
	}
	return nil
}

func (e *Engine) goRun(f func()) {
	e.wg.Add(1)
	go func() { defer e.wg.Done(); f() }()
}

// Stop ends the consumers and the station actors.
func (e *Engine) Stop(ctx context.Context) error {
	if e.cancel != nil {
		e.cancel()
	}
	done := make(chan struct{})
	go func() {
		e.wg.Wait()
		e.actors.close()
		close(done)
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	if e.follower != nil {
		e.follower.cl.Close()
	}
	if e.listen != nil {
		e.listen.cl.Close()
	}
	if e.sink != nil {
		e.sink.cl.Close()
	}
	if e.ownProd {
		e.producer.Close()
	}
	return err
}

// PutItems validates items and writes them to the catalog stream; every
// radio node applies them when it reads them back.
func (e *Engine) PutItems(ctx context.Context, items []Item) error {
	if err := ValidateItems(items); err != nil {
		return err
	}
	v := make([]change, len(items))
	for i := range items {
		v[i].Item = &items[i]
	}
	recs, err := e.records(v)
	if err != nil {
		return err
	}
	return e.produce(ctx, recs)
}

// PutStation validates st and writes it to the catalog stream.
func (e *Engine) PutStation(ctx context.Context, st *Station) error {
	if st.ID == 0 {
		return refusal.Invalidf("id", "must be a positive integer")
	}
	if err := st.Prepare(); err != nil {
		return err
	}
	recs, err := e.records([]change{{Station: st}})
	if err != nil {
		return err
	}
	return e.produce(ctx, recs)
}

// Station returns the station with id as this node knows it.
func (e *Engine) Station(id uint64) (*Station, bool) { return e.actors.station(id) }

// Stations lists the stations by id.
func (e *Engine) Stations() []*Station { return e.actors.stations() }

// Item returns the item with id as this node's catalog holds it.
func (e *Engine) Item(id uint64) (*Item, bool) { return e.actors.snap.Load().Item(id) }
