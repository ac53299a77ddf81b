package ingest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// ErrUnavailable is matched (errors.Is) by every Produce error: Kafka did not
// acknowledge all events in time. The HTTP layer answers 503; the client
// retries, and only a client-given event_id makes that retry idempotent.
var ErrUnavailable = errors.New("kafka unavailable")

// Hooks observe the producer without tying this package to a metrics
// library. Nil functions are skipped. They run on the request's goroutine
// and must be fast.
type Hooks struct {
	// OnProduced is called after Kafka acknowledged all n events of a call,
	// d after it started.
	OnProduced func(n int, d time.Duration)
	// OnFailed is called when a call with n events fails; err is what
	// Produce returns.
	OnFailed func(n int, err error)
}

// ProducerConfig configures NewProducer.
type ProducerConfig struct {
	// Client is required. The caller configures it: acks from all in-sync
	// replicas and the idempotent producer are what make a nil Produce
	// mean "durable"; a short linger batches concurrent requests.
	Client *kgo.Client
	// Topic defaults to "events" when empty.
	Topic string
	// Timeout bounds how long Produce waits for acknowledgement before it
	// fails with ErrUnavailable; 0 means 5s. Keep it below the HTTP
	// server's write timeout so that the client gets a 503, not a reset.
	Timeout time.Duration
	// IDs is required: it assigns EventID to events that came without one.
	IDs *IDGen
	// Hooks are optional.
	Hooks Hooks
}

// Producer writes events to Kafka, keyed by user.
type Producer struct {
	cl      *kgo.Client
	topic   string
	timeout time.Duration
	ids     *IDGen
	hooks   Hooks
	pool    sync.Pool // *produceBatch
}

// NewProducer validates cfg and returns a Producer.
func NewProducer(cfg ProducerConfig) (*Producer, error) {
	if cfg.Client == nil {
		return nil, errors.New("ingest: ProducerConfig.Client is required")
	}
	if cfg.IDs == nil {
		return nil, errors.New("ingest: ProducerConfig.IDs is required")
	}
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("ingest: ProducerConfig.Timeout %s is negative", cfg.Timeout)
	}
	if cfg.Topic == "" {
		cfg.Topic = "events"
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Second
	}
	return &Producer{cl: cfg.Client, topic: cfg.Topic, timeout: cfg.Timeout, ids: cfg.IDs, hooks: cfg.Hooks}, nil
}

// produceBatch holds one Produce call's records and their bytes. It goes
// back to the pool only once every promise has run, because kgo reads the
// records and their Key/Value until then; a batch abandoned on timeout is
// left to the garbage collector.
type produceBatch struct {
	recs    []kgo.Record
	buf     []byte
	ends    []int // end offset in buf of each record's key, then value
	pending atomic.Int64
	failed  atomic.Int64
	mu      sync.Mutex
	err     error // first failure
	done    chan struct{}
	promise func(*kgo.Record, error) // b.onPromise, bound once per batch
	timer   *time.Timer              // the Timeout, reused with the batch
}

func (b *produceBatch) onPromise(_ *kgo.Record, err error) {
	if err != nil {
		b.failed.Add(1)
		b.mu.Lock()
		if b.err == nil {
			b.err = err
		}
		b.mu.Unlock()
	}
	if b.pending.Add(-1) == 0 {
		close(b.done)
	}
}

// Produce assigns an EventID to every event without one, setting ServerID
// (both written into evs, so the caller can log them), encodes the events and produces each one
// keyed by its user id. It returns nil only when Kafka acknowledged every
// event; otherwise an error that wraps ErrUnavailable and the cause, after
// at most the configured Timeout (or when ctx ends). A failed call may still
// have written some events: the client's retry duplicates them unless it
// sent event ids. The records stay bound to ctx: cancel it after a failed
// call (an HTTP request's context is) and kgo drops those not yet sent.
func (p *Producer) Produce(ctx context.Context, evs []Event) error {
	if len(evs) == 0 {
		return nil
	}
	start := time.Now()
	for i := range evs {
		if evs[i].EventID == "" {
			evs[i].EventID, evs[i].ServerID = p.ids.Next(), true
		}
	}
	b := p.encode(evs, start)

	// The Timeout is a timer kept with the batch, cheaper per call than a
	// context.WithTimeout. The records carry ctx: once the caller cancels
	// it (net/http does when the handler returns), kgo fails those not
	// sent yet, so after a timeout few of them land behind the 503.
	if b.timer == nil {
		b.timer = time.NewTimer(p.timeout)
	} else {
		b.timer.Reset(p.timeout)
	}
	b.pending.Store(int64(len(b.recs)))
	b.failed.Store(0)
	b.err = nil
	b.done = make(chan struct{})
	for i := range b.recs {
		p.cl.Produce(ctx, &b.recs[i], b.promise)
	}

	var err, gaveUp error
	select {
	case <-b.done:
		b.timer.Stop()
		if b.err != nil {
			err = fmt.Errorf("%w: %d of %d events not acknowledged by topic %q: %w",
				ErrUnavailable, b.failed.Load(), len(evs), p.topic, b.err)
		}
	case <-b.timer.C:
		gaveUp = context.DeadlineExceeded
	case <-ctx.Done():
		gaveUp = ctx.Err()
	}
	if gaveUp != nil {
		err = fmt.Errorf("%w: %d of %d events not acknowledged by topic %q after %s: %w",
			ErrUnavailable, b.pending.Load()+b.failed.Load(), len(evs), p.topic, time.Since(start).Round(time.Millisecond), gaveUp)
		b = nil // kgo still holds its records
	}
	if b != nil {
		p.pool.Put(b)
	}
	if err != nil {
		if p.hooks.OnFailed != nil {
			p.hooks.OnFailed(len(evs), err)
		}
		return err
	}
	if p.hooks.OnProduced != nil {
		p.hooks.OnProduced(len(evs), time.Since(start))
	}
	return nil
}

// encode builds a batch of records for evs in one contiguous buffer.
func (p *Producer) encode(evs []Event, now time.Time) *produceBatch {
	b, _ := p.pool.Get().(*produceBatch)
	if b == nil {
		b = &produceBatch{}
		b.promise = b.onPromise
	}
	buf, ends := b.buf[:0], b.ends[:0]
	for i := range evs {
		buf = AppendRecordKey(buf, evs[i].UserID)
		ends = append(ends, len(buf))
		buf = AppendRecord(buf, &evs[i])
		ends = append(ends, len(buf))
	}
	// Slice only now: the appends above may have moved buf.
	if cap(b.recs) < len(evs) {
		b.recs = make([]kgo.Record, len(evs))
	}
	b.recs = b.recs[:len(evs)]
	off := 0
	for i := range b.recs {
		k, v := ends[2*i], ends[2*i+1]
		// The server's clock, not the client's ts: the aggregator measures
		// visibility latency from it.
		b.recs[i] = kgo.Record{Topic: p.topic, Key: buf[off:k:k], Value: buf[k:v:v], Timestamp: now}
		off = v
	}
	b.buf, b.ends = buf, ends
	return b
}
