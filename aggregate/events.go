package aggregate

import (
	"context"
	"fmt"
	"time"
)

// eventsJob is one flush of buffered event rows (dedupe, then one INSERT),
// running in the background so that fetching, decoding and the 100 ms
// Redis write-back go on meanwhile. At most one runs at a time, so its rows
// are always older than the buffers, and a later job's dedupe sees every
// claim an earlier one made.
//
// The job owns a snapshot: for each partition with rows, a partition value
// holding only the rows, their id and the watermark; markDuplicates,
// insertEvents and reconcile work on it as they would on the partition.
type eventsJob struct {
	parts []*partition
	upto  map[int32]int64 // the last offset taken in when the rows were cut
	// reconcileFirst: an earlier INSERT failed, and may have landed.
	reconcileFirst bool
	done           chan error
	// set by the job before done
	dups      int
	uncertain bool // the INSERT failed and may have landed
}

// cutEvents hands the buffered event rows to a background flush. A finished
// flush is reaped first; a running one is waited for if wait is set, else
// the rows stay buffered for the next cut. The caller holds mu.
func (a *Aggregator) cutEvents(parts []*partition, wait bool) error {
	if err := a.reapEvents(wait); err != nil {
		return err
	}
	if a.events != nil {
		return nil
	}
	job := &eventsJob{upto: map[int32]int64{}, reconcileFirst: a.uncertain, done: make(chan error, 1)}
	for _, p := range parts {
		if len(p.events) == 0 {
			// nothing of this partition awaits ClickHouse
			p.inCH = max(p.inCH, p.processed)
			continue
		}
		job.parts = append(job.parts, &partition{id: p.id, events: p.events, watermark: p.watermark})
		job.upto[p.id] = p.processed
		p.events = nil // a new buffer: the job owns the old one
	}
	a.lastCH = time.Now()
	a.month = 0
	if len(job.parts) == 0 {
		return nil
	}
	a.events = job
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), flushTimeout)
		defer cancel()
		job.done <- a.runEvents(ctx, job)
	}()
	return nil
}

// runEvents marks duplicate event ids and inserts the job's rows. It runs
// without mu and touches only the job.
func (a *Aggregator) runEvents(ctx context.Context, job *eventsJob) error {
	if job.reconcileFirst {
		if err := a.reconcile(ctx, job.parts); err != nil {
			job.uncertain = true
			return err
		}
	}
	start := time.Now()
	dups, err := a.markDuplicates(ctx, job.parts)
	if err != nil {
		a.m.sinkErrors.WithLabelValues("redis").Inc()
		job.uncertain = job.reconcileFirst
		return err
	}
	ne, err := a.insertEvents(ctx, job.parts)
	if err != nil {
		a.m.sinkErrors.WithLabelValues("clickhouse").Inc()
		// The INSERT is one block, but the server may have applied it
		// although we saw an error (a timeout, a dropped connection): only
		// the watermarks can tell, now or at the next attempt.
		job.uncertain = true
		if rerr := a.reconcile(context.WithoutCancel(ctx), job.parts); rerr != nil {
			return fmt.Errorf("%w (and reconciling: %v)", err, rerr)
		}
		if countEvents(job.parts) > 0 {
			return err
		}
		a.cfg.Log.Info("events insert reported an error but landed", "rows", ne, "err", err)
	}
	job.dups, job.uncertain = dups, false
	if ne > 0 {
		a.m.flushRows.WithLabelValues("events").Observe(float64(ne))
		a.m.flushSeconds.WithLabelValues("clickhouse").Observe(time.Since(start).Seconds())
	}
	return nil
}

// reapEvents applies the outcome of the background events flush once it is
// done (waiting for it when wait is set): on success the partitions'
// watermarks advance; on failure the rows not known to have landed go back
// in front of the buffers, to be flushed again. The caller holds mu.
func (a *Aggregator) reapEvents(wait bool) error {
	job := a.events
	if job == nil {
		return nil
	}
	var err error
	if wait {
		err = <-job.done
	} else {
		select {
		case err = <-job.done:
		default:
			return nil
		}
	}
	a.events = nil
	a.uncertain = job.uncertain
	for _, jp := range job.parts {
		p := a.parts[jp.id]
		if p == nil {
			continue // no longer ours: the next owner resumes from ClickHouse
		}
		p.watermark = max(p.watermark, jp.watermark)
		if err != nil {
			p.events = append(jp.events, p.events...)
			continue
		}
		if n := len(jp.events); n > 0 {
			p.watermark = max(p.watermark, jp.events[n-1].offset)
		}
		p.inCH = max(p.inCH, job.upto[jp.id])
	}
	if err != nil {
		return fmt.Errorf("events flush: %w", err)
	}
	a.m.duplicates.Add(float64(job.dups))
	return nil
}
