package aggregate

import (
	"context"
	"errors"
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
	uncertain bool           // an INSERT failed and may have landed
	failed    map[int32]bool // partitions whose rows are not (known to be) in
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

// eventsWorkers is how many groups of partitions a job flushes side by
// side: while one group's INSERT runs in ClickHouse, the next one's dedupe
// runs in Redis. Each group's rows go in one INSERT of their own, so every
// partition's rows still land in one block.
const eventsWorkers = 2

// runEvents flushes the job's partitions in eventsWorkers groups at once.
// It runs without mu and touches only the job.
func (a *Aggregator) runEvents(ctx context.Context, job *eventsJob) error {
	groups := make([][]*partition, eventsWorkers)
	sizes := make([]int, eventsWorkers)
	for _, p := range job.parts {
		g := 0 // the group with the fewest rows so far
		for i := range sizes {
			if sizes[i] < sizes[g] {
				g = i
			}
		}
		groups[g], sizes[g] = append(groups[g], p), sizes[g]+len(p.events)
	}
	type result struct {
		parts     []*partition
		dups      int
		uncertain bool
		err       error
	}
	results := make(chan result, eventsWorkers)
	n := 0
	for _, g := range groups {
		if len(g) == 0 {
			continue
		}
		n++
		go func() {
			dups, uncertain, err := a.flushGroup(ctx, g, job.reconcileFirst)
			results <- result{g, dups, uncertain, err}
		}()
	}
	var errs []error
	job.failed = map[int32]bool{}
	for range n {
		r := <-results
		job.dups += r.dups
		job.uncertain = job.uncertain || r.uncertain
		if r.err != nil {
			errs = append(errs, r.err)
			for _, p := range r.parts {
				job.failed[p.id] = true
			}
		}
	}
	return errors.Join(errs...)
}

// flushGroup marks duplicate event ids and inserts the rows of some
// partitions in one INSERT. uncertain reports an INSERT that failed and may
// still have landed.
func (a *Aggregator) flushGroup(ctx context.Context, parts []*partition, reconcileFirst bool) (dups int, uncertain bool, err error) {
	if reconcileFirst {
		if err := a.reconcile(ctx, parts); err != nil {
			return 0, true, err
		}
	}
	start := time.Now()
	dups, err = a.markDuplicates(ctx, parts)
	if err != nil {
		a.m.sinkErrors.WithLabelValues("redis").Inc()
		return 0, reconcileFirst, err
	}
	ne, err := a.insertEvents(ctx, parts)
	if err != nil {
		a.m.sinkErrors.WithLabelValues("clickhouse").Inc()
		// The INSERT is one block, but the server may have applied it
		// although we saw an error (a timeout, a dropped connection): only
		// the watermarks can tell, now or at the next attempt.
		if rerr := a.reconcile(context.WithoutCancel(ctx), parts); rerr != nil {
			return 0, true, fmt.Errorf("%w (and reconciling: %v)", err, rerr)
		}
		if countEvents(parts) > 0 {
			return 0, true, err
		}
		a.cfg.Log.Info("events insert reported an error but landed", "rows", ne, "err", err)
	}
	if ne > 0 {
		a.m.flushRows.WithLabelValues("events").Observe(float64(ne))
		a.m.flushSeconds.WithLabelValues("events").Observe(time.Since(start).Seconds())
	}
	return dups, false, nil
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
	done, err := outcome(job.done, wait)
	if !done {
		return nil
	}
	a.events = nil
	a.uncertain = job.uncertain
	for _, jp := range job.parts {
		p := a.parts[jp.id]
		if p == nil {
			continue // no longer ours: the next owner resumes from ClickHouse
		}
		p.watermark = max(p.watermark, jp.watermark)
		if job.failed[jp.id] {
			p.events = append(jp.events, p.events...)
			continue
		}
		if n := len(jp.events); n > 0 {
			p.watermark = max(p.watermark, jp.events[n-1].offset)
		}
		p.inCH = max(p.inCH, job.upto[jp.id])
	}
	a.m.duplicates.Add(float64(job.dups))
	if err != nil {
		return fmt.Errorf("events flush: %w", err)
	}
	return nil
}

// reconcile drops from the buffers every event row ClickHouse already holds,
// after waiting out INSERTs still running for these partitions. One INSERT
// holds a contiguous run of each partition's buffer, so the rows at or below
// the partition's watermark are exactly those that landed.
func (a *Aggregator) reconcile(ctx context.Context, parts []*partition) error {
	var ids []int32
	for _, p := range parts {
		if len(p.events) > 0 {
			ids = append(ids, p.id)
		}
	}
	if err := a.settle(ctx, ids); err != nil {
		return err
	}
	wm, err := a.watermarks(ctx, ids)
	if err != nil {
		return err
	}
	for _, p := range parts {
		w, ok := wm[p.id]
		if !ok {
			continue
		}
		n := 0
		for n < len(p.events) && p.events[n].offset <= w {
			n++
		}
		if n > 0 {
			a.cfg.Log.Info("rows of a failed insert had landed; not inserting them again", "partition", p.id, "rows", n, "watermark", w)
			p.events = append(p.events[:0], p.events[n:]...)
		}
		p.watermark = max(p.watermark, w)
	}
	return nil
}
