package aggregate

import (
	"context"
	"fmt"
	"time"
)

// progressJob is one flush of held onair.progress rows, running in the
// background over a snapshot so that the 100 ms Redis write-back never waits
// behind a large INSERT.
type progressJob struct {
	rows map[int32]map[key]progressRow
	held map[int32]map[key]*state // the partitions' held states, for a Redis loss
	upto map[int32]int64          // the offset each partition's rows cover
	done chan error
	// entries is how many rows and held states the job holds, counted
	// when it starts: the job's goroutine writes rows (joinCold), so
	// Retained must not read the maps while it runs.
	entries int
}

// startProgress hands the held rows to a background flush, unless one is
// running. The rows cover everything written back (partition.written).
// The caller holds mu.
func (a *Aggregator) startProgress(parts []*partition) {
	if a.job != nil {
		return
	}
	a.lastProgress = time.Now()
	job := &progressJob{rows: map[int32]map[key]progressRow{}, held: map[int32]map[key]*state{},
		upto: map[int32]int64{}, done: make(chan error, 1)}
	for _, p := range parts {
		if p.written > p.progressWM {
			job.rows[p.id], p.progress = p.progress, make(map[key]progressRow)
			job.held[p.id], p.held = p.held, make(map[key]*state)
			job.upto[p.id] = p.written
			job.entries += len(job.rows[p.id]) + len(job.held[p.id])
		}
	}
	if len(job.upto) == 0 {
		return
	}
	a.job = job
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), flushTimeout)
		defer cancel()
		// Rows first, then how far they go: a crash between the two only
		// means the rows are inserted again, which ReplacingMergeTree absorbs.
		start := time.Now()
		err := a.joinCold(ctx, job.rows)
		n := 0
		if err == nil {
			n, err = a.insertProgress(ctx, job.rows)
		}
		if err == nil {
			err = a.insertOffsets(ctx, job.upto)
		}
		if err != nil {
			a.m.sinkErrors.WithLabelValues("clickhouse").Inc()
		} else {
			a.m.flushRows.WithLabelValues("progress").Observe(float64(n))
			a.m.flushSeconds.WithLabelValues("progress").Observe(time.Since(start).Seconds())
		}
		job.done <- err
	}()
}

// reapProgress applies the outcome of the background flush once it is done
// (waiting for it when wait is set): on success the partitions' progress
// watermarks advance; on failure the rows go back to be flushed again,
// behind any newer state held since. The caller holds mu.
func (a *Aggregator) reapProgress(wait bool) error {
	if a.job == nil {
		return nil
	}
	done, err := outcome(a.job.done, wait)
	if !done {
		return nil
	}
	job := a.job
	a.job = nil
	if err == nil {
		a.retire(job.held)
	}
	for id, upto := range job.upto {
		p := a.parts[id]
		if p == nil {
			continue // no longer ours: the next owner replays from its offsets
		}
		if err == nil {
			p.progressWM = max(p.progressWM, upto)
			continue
		}
		for k, r := range job.rows[id] {
			if _, newer := p.progress[k]; !newer {
				p.progress[k] = r
			}
		}
		for k, s := range job.held[id] {
			joinState(p.held, k, s)
		}
	}
	if err != nil {
		a.lastProgress = time.Time{} // due again at the next flush
		return fmt.Errorf("progress flush: %w", err)
	}
	return nil
}
