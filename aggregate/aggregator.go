package aggregate

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/onair/onair/history"
	"github.com/onair/onair/ingest"
	"github.com/onair/onair/internal/logsample"
)

// flushTimeout bounds one flush; a sink slower than this counts as failing.
const flushTimeout = 30 * time.Second

// maxBufferedBatches bounds the event rows buffered while an events flush
// runs, in --batch-rows: past it the poll loop waits for the flush. Waiting
// also stops the Redis write-back, so the bound is set well above what a
// busy second brings (5 × 100 000 rows, ~150 MB): a slow INSERT then delays
// ClickHouse, not history.
const maxBufferedBatches = 5

// Aggregator owns some partitions of the events topic (the consumer group
// decides which) and drives them through Redis and ClickHouse.
//
// Every record goes through three steps, in this order, and Kafka offsets
// are committed only after all three:
//
//  1. take: decode, collapse progress into the partition's LWW map, buffer
//     the event row;
//  2. write-back (every RedisFlush): the collapsed progress goes to Redis by
//     compare-and-set (package history), its results become progress rows;
//  3. batch (every ClickHouseFlush or BatchRows): the event rows go to a
//     background events job (events.go: dedupe, then one INSERT per group
//     of partitions); every ProgressFlush the progress rows go to a
//     background job of their own; commits cover what both have landed.
//
// Exactly once rests on: each event row carries its (partition, offset); a
// newly assigned partition resumes after the highest offset ClickHouse holds;
// every Redis write is an idempotent compare-and-set; progress rows are
// versioned. See DESIGN.md.
type Aggregator struct {
	cfg Config
	cl  *kgo.Client
	m   *metrics

	mu    sync.Mutex // guards parts and the buffers inside them
	parts map[int32]*partition
	// month is the ingested_at month (yyyymm) of the buffered event rows;
	// a record of another month forces a batch first (see insertEvents).
	month int

	lastRedis, lastCH, lastProgress time.Time
	// lastObserved is when the retained gauges were last set.
	lastObserved time.Time
	// uncertain is set when an events INSERT failed: the server may still
	// have applied it, so the buffers are reconciled with ClickHouse's
	// watermarks before anything is inserted again.
	uncertain bool
	// wb is the Redis write-back running in the background, if any.
	wb *writeBackJob
	// job is the progress flush running in the background, if any.
	job *progressJob
	// events is the events flush running in the background, if any.
	events *eventsJob
	// Redis loss detection (redisloss.go): the epoch last seen, the check
	// running in the background, and held states of finished progress
	// flushes not yet known to have reached ClickHouse before any loss.
	epoch     history.Epoch
	check     *epochCheck
	lastCheck time.Time
	retired   []retiredHeld
	// failing is set while a sink refuses writes: fetching is paused and
	// flushes are retried with backoff until it heals.
	failing   bool
	backoff   time.Duration
	nextRetry time.Time
	// failLog samples the log lines of a sink that keeps failing.
	failLog logsample.Sampler
}

// New validates cfg and joins the consumer group. Call Run to consume.
func New(cfg Config) (*Aggregator, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, fmt.Errorf("aggregate: register metrics: %w", err)
	}
	a := &Aggregator{cfg: cfg, parts: make(map[int32]*partition), m: m,
		failLog: logsample.Sampler{Every: 30 * time.Second}}
	opts := []kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.ConsumerGroup(cfg.Group),
		kgo.ConsumeTopics(cfg.Topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
		// Rebalance callbacks never run while a polled batch is being
		// processed, so a revoke sees whole records and can flush them.
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsAssigned(a.assigned),
		kgo.OnPartitionsRevoked(a.revoked),
		kgo.OnPartitionsLost(a.lost),
		kgo.AdjustFetchOffsetsFn(a.resume),
		kgo.FetchMaxWait(50 * time.Millisecond),
	}
	if cfg.InstanceID != "" {
		opts = append(opts, kgo.InstanceID(cfg.InstanceID))
	}
	if cfg.SessionTimeout > 0 {
		opts = append(opts, kgo.SessionTimeout(cfg.SessionTimeout))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("aggregate: cannot create Kafka client: %w", err)
	}
	a.cl = cl
	return a, nil
}

// Run consumes until ctx is done, then flushes and commits what it holds and
// leaves the group. It returns nil after a clean stop.
func (a *Aggregator) Run(ctx context.Context) error {
	a.lastRedis, a.lastCH, a.lastProgress = time.Now(), time.Now(), time.Now()
	for {
		if ctx.Err() != nil {
			return a.stop()
		}
		pollCtx, cancel := context.WithTimeout(ctx, a.cfg.RedisFlush)
		fetches := a.cl.PollRecords(pollCtx, a.cfg.MaxPollRecords)
		cancel()
		if fetches.IsClientClosed() {
			return nil
		}
		fetches.EachError(func(topic string, p int32, err error) {
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
				return
			}
			a.m.kafkaErrors.Inc()
			a.cfg.Log.Warn("kafka fetch error", "topic", topic, "partition", p, "err", err)
		})
		a.mu.Lock()
		fetches.EachPartition(func(fp kgo.FetchTopicPartition) {
			p := a.parts[fp.Partition]
			if p == nil || len(fp.Records) == 0 {
				return
			}
			for _, r := range fp.Records {
				a.take(ctx, p, r)
			}
			last := fp.Records[len(fp.Records)-1].Offset
			a.m.lag.WithLabelValues(itoa32(fp.Partition)).Set(float64(max(fp.HighWatermark-last-1, 0)))
		})
		// Flushes must not be cut short by shutdown: an INSERT cancelled on
		// our side may still complete on the server. stop() flushes last.
		a.flushDue(context.WithoutCancel(ctx), time.Now())
		a.mu.Unlock()
		a.cl.AllowRebalance()
	}
}

// stop flushes everything, commits, and leaves the group.
func (a *Aggregator) stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a.mu.Lock()
	err := a.flushEverything(ctx, a.owned())
	a.mu.Unlock()
	if err != nil {
		a.cfg.Log.Error("aggregator stopping with unflushed records; they will be replayed", "err", err)
	}
	a.cl.AllowRebalance()
	a.cl.Close()
	return err
}

// take folds one record into its partition's buffers. The caller holds mu.
func (a *Aggregator) take(ctx context.Context, p *partition, r *kgo.Record) {
	if r.Offset <= p.processed {
		return
	}
	if r.Offset <= p.progressWM && r.Offset <= p.watermark {
		// Every effect of this record is in ClickHouse (and so in Redis).
		p.processed, p.epoch = r.Offset, r.LeaderEpoch
		a.m.skipped.WithLabelValues("replayed").Inc()
		return
	}
	inEvents := r.Offset <= p.watermark
	if !inEvents {
		month := r.Timestamp.UTC().Year()*100 + int(r.Timestamp.UTC().Month())
		if a.month != 0 && month != a.month && a.buffered() > 0 {
			// Keep one INSERT inside one ClickHouse partition (see insertEvents).
			if err := a.cutEvents(a.owned(), true); err != nil {
				a.sinkFailed(err)
			}
		}
		a.month = month
	}
	p.processed, p.epoch = r.Offset, r.LeaderEpoch

	var row eventRow
	if err := ingest.DecodeRecord(r.Value, &row.ev); err != nil {
		// Only a foreign producer or a bug writes such a record: there is
		// nothing to aggregate, but say so loudly.
		a.m.skipped.WithLabelValues("undecodable").Inc()
		a.cfg.Log.Error("skipping undecodable record", "partition", p.id, "offset", r.Offset, "bytes", len(r.Value), "err", err)
		return
	}
	if inEvents {
		// Replayed only to rebuild progress held when the last owner stopped.
		a.m.skipped.WithLabelValues("replayed").Inc()
	} else {
		row.offset, row.appended = r.Offset, r.Timestamp
		row.dedupe = row.ev.EventID != "" && !row.ev.ServerID
		p.events = append(p.events, row)
		a.m.events.WithLabelValues(row.ev.Type.String()).Inc()
	}
	a.takeGift(p, r.Offset, r.Timestamp, &row.ev)
	if r.Offset > p.progressWM && (row.ev.Type == ingest.TypeProgress || row.ev.Type == ingest.TypePlay) {
		k := key{user: row.ev.UserID, biz: row.ev.Biz, item: row.ev.ItemID}
		s := p.dirty[k]
		if s == nil {
			s = &state{}
			p.dirty[k] = s
		}
		s.add(reportOf(&row.ev))
		s.appendMs = max(s.appendMs, r.Timestamp.UnixMilli())
		a.m.reports.Inc()
	}
}

// flushDue runs the flushes whose time (or size) has come. The caller holds mu.
func (a *Aggregator) flushDue(ctx context.Context, now time.Time) {
	if err := a.reapWriteBack(false); err != nil {
		a.sinkFailed(err)
	}
	if err := a.reapProgress(false); err != nil {
		a.sinkFailed(err)
	}
	if err := a.reapEvents(false); err != nil {
		a.sinkFailed(err)
	}
	a.checkEpoch(now)
	if now.Sub(a.lastObserved) >= time.Second {
		a.observeRetained()
		a.lastObserved = now
	}
	if a.failing && now.Before(a.nextRetry) {
		return
	}
	parts := a.owned()
	var err error
	// Events are due when no flush of them is running, or when the buffers
	// hit their bound (then flushAll waits for the running one).
	eventsDue := a.events == nil && (a.buffered() >= a.cfg.BatchRows || now.Sub(a.lastCH) >= a.cfg.ClickHouseFlush) ||
		a.overBound()
	switch progress := now.Sub(a.lastProgress) >= a.cfg.ProgressFlush; {
	case progress || eventsDue || a.failing:
		err = a.flushAll(ctx, parts, progress, false)
	case now.Sub(a.lastRedis) >= a.cfg.RedisFlush && a.wb == nil:
		a.startWriteBack(ctx, parts)
		a.lastRedis = now
	}
	if err != nil {
		a.sinkFailed(err)
		return
	}
	if a.failing {
		a.failing, a.backoff = false, 0
		a.failLog.Reset()
		a.cl.ResumeFetchTopics(a.cfg.Topic)
		a.cfg.Log.Info("sinks healthy again, fetching resumed")
	}
}

// sinkFailed pauses fetching and schedules a retry. Records already taken in
// stay buffered; paused fetching bounds the memory they use.
func (a *Aggregator) sinkFailed(err error) {
	if a.backoff == 0 {
		a.backoff = a.cfg.RetryBackoff
	} else {
		a.backoff = min(a.backoff*2, 5*time.Second)
	}
	a.nextRetry = time.Now().Add(a.backoff)
	if !a.failing {
		a.cl.PauseFetchTopics(a.cfg.Topic)
	}
	a.failing = true
	a.m.retries.Inc()
	// A sink that stays down fails every retry: log a sample, with a count.
	if n, ok := a.failLog.Due(); ok {
		a.cfg.Log.Warn("sink write failed; fetching paused, will retry", "retry_in", a.backoff, "failures", n, "err", err)
	}
}

// flushAll starts a write-back to Redis (waits for it with wait, or while
// recovering from a failure), hands the buffered event rows to a background
// events flush (see eventsJob), with progress also the held onair.progress
// rows to theirs, then commits what is done. The caller holds mu. On error
// nothing is committed and the buffers are kept for the retry: every step
// is idempotent.
func (a *Aggregator) flushAll(ctx context.Context, parts []*partition, progress, wait bool) error {
	ctx, cancel := context.WithTimeout(ctx, flushTimeout)
	defer cancel()
	if err := a.writeBack(ctx, parts, wait || a.failing); err != nil {
		return err
	}
	a.lastRedis = time.Now()
	// While a flush runs, rows keep buffering; past maxBufferedBatches
	// batches, wait for it, so memory stays bounded.
	if err := a.cutEvents(parts, a.failing || a.overBound()); err != nil {
		return err
	}
	if a.failing {
		// Recovering: wait for the verdict before calling the sinks healthy.
		if err := a.reapEvents(true); err != nil {
			return err
		}
	}
	if progress {
		a.startProgress(parts)
	}
	return a.commit(ctx, parts)
}

// flushEverything flushes every sink, waits for the progress flush, and
// commits: what a partition must get before it is let go. The caller holds mu.
func (a *Aggregator) flushEverything(ctx context.Context, parts []*partition) error {
	if err := a.reapProgress(true); err != nil {
		a.cfg.Log.Warn("earlier progress flush failed; flushing again", "err", err)
	}
	if err := a.reapEvents(true); err != nil {
		a.cfg.Log.Warn("earlier events flush failed; flushing again", "err", err)
	}
	if err := a.flushAll(ctx, parts, true, true); err != nil {
		return err
	}
	if err := a.reapEvents(true); err != nil {
		return err
	}
	if err := a.reapProgress(true); err != nil {
		return err
	}
	return a.commit(ctx, parts)
}

// commit commits, per partition, the offset after the last record whose
// every effect is in ClickHouse. It is informational (monitoring, lag): the
// resume point is ClickHouse's watermarks (see resume), so a failed commit
// is only logged.
func (a *Aggregator) commit(ctx context.Context, parts []*partition) error {
	offsets := map[int32]kgo.EpochOffset{}
	for _, p := range parts {
		done := min(p.processed, p.progressWM, p.inCH)
		if next := done + 1; done >= 0 && next > p.committed {
			offsets[p.id] = kgo.EpochOffset{Epoch: p.epoch, Offset: next}
		}
	}
	if len(offsets) == 0 {
		return nil
	}
	var cerr error
	a.cl.CommitOffsetsSync(ctx, map[string]map[int32]kgo.EpochOffset{a.cfg.Topic: offsets},
		func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
			cerr = err
			if err == nil {
				for _, t := range resp.Topics {
					for _, pr := range t.Partitions {
						if e := kerr.ErrorForCode(pr.ErrorCode); e != nil {
							cerr = fmt.Errorf("partition %d: %w", pr.Partition, e)
						}
					}
				}
			}
		})
	if cerr != nil {
		a.m.kafkaErrors.Inc()
		a.cfg.Log.Warn("offset commit failed; ClickHouse watermarks still guard against duplicates", "err", cerr)
		return nil
	}
	for _, p := range parts {
		if eo, ok := offsets[p.id]; ok {
			p.committed = eo.Offset
		}
	}
	return nil
}

// owned returns the owned partitions in id order. The caller holds mu.
func (a *Aggregator) owned() []*partition {
	ps := make([]*partition, 0, len(a.parts))
	for _, p := range a.parts {
		ps = append(ps, p)
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i].id < ps[j].id })
	return ps
}

// outcome reports whether a background job (write-back, events or
// progress flush) has finished, waiting for it with wait, and the error it
// sent on done.
func outcome(done <-chan error, wait bool) (finished bool, err error) {
	if wait {
		return true, <-done
	}
	select {
	case err = <-done:
		return true, err
	default:
		return false, nil
	}
}

// overBound reports buffers past maxBufferedBatches batches. The caller
// holds mu.
func (a *Aggregator) overBound() bool {
	return a.buffered() >= maxBufferedBatches*a.cfg.BatchRows
}

// buffered counts event rows awaiting ClickHouse. The caller holds mu.
func (a *Aggregator) buffered() int {
	n := 0
	for _, p := range a.parts {
		n += len(p.events)
	}
	return n
}
