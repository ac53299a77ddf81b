package aggregate

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// assigned creates state for newly owned partitions. Their watermarks are
// filled in by resume, which runs after it.
func (a *Aggregator) assigned(_ context.Context, _ *kgo.Client, assigned map[string][]int32) {
	a.mu.Lock()
	defer a.mu.Unlock()
	var fresh []int32
	for _, p := range assigned[a.cfg.Topic] {
		if a.parts[p] == nil {
			a.parts[p] = newPartition(p, -1)
			fresh = append(fresh, p)
		}
	}
	a.rebuildRooms(fresh, false) // a loss its last owner may not have rebuilt
	a.cfg.Log.Info("partitions assigned", "partitions", assigned[a.cfg.Topic])
}

// resume starts each assigned partition just after what ClickHouse already
// holds: the lower of its events watermark and its progress offset. Records
// between the two rebuild held progress without inserting events again. This
// is what makes a kill at any instant harmless. ClickHouse being down blocks
// the assignment (retrying) rather than guessing.
func (a *Aggregator) resume(ctx context.Context, offsets map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
	topic := offsets[a.cfg.Topic]
	ids := make([]int32, 0, len(topic))
	for p := range topic {
		ids = append(ids, p)
	}
	var ewm, pwm map[int32]int64
	backoff := a.cfg.RetryBackoff
	for {
		err := a.settle(ctx, ids)
		if err == nil {
			if ewm, err = a.watermarks(ctx, ids); err == nil {
				pwm, err = a.progressOffsets(ctx, ids)
			}
		}
		if err == nil {
			break
		}
		a.m.sinkErrors.WithLabelValues("clickhouse").Inc()
		a.cfg.Log.Warn("cannot read ClickHouse watermarks; assignment waits", "retry_in", backoff, "err", err)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for p, off := range topic {
		ew, ok := ewm[p]
		if !ok {
			ew = -1
		}
		pw, ok := pwm[p]
		if !ok {
			pw = -1
		}
		if st := a.parts[p]; st != nil {
			st.watermark, st.progressWM, st.processed, st.written, st.inCH = ew, pw, -1, -1, ew
		}
		start := min(ew, pw) + 1
		topic[p] = kgo.NewOffset().At(start).WithEpoch(-1)
		a.cfg.Log.Info("resuming from ClickHouse watermarks", "partition", p,
			"committed", off.EpochOffset().Offset, "events", ew, "progress", pw, "offset", start)
	}
	return offsets, nil
}

// revoked flushes and commits the partitions being taken away, so the next
// owner starts exactly where this one stopped. If a sink is down the state is
// dropped uncommitted: the next owner replays it, and every write is
// idempotent.
func (a *Aggregator) revoked(ctx context.Context, _ *kgo.Client, revoked map[string][]int32) {
	a.mu.Lock()
	defer a.mu.Unlock()
	var parts []*partition
	for _, id := range revoked[a.cfg.Topic] {
		if p := a.parts[id]; p != nil {
			parts = append(parts, p)
		}
	}
	fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := a.flushEverything(fctx, parts); err != nil {
		a.m.dropped.Add(float64(countEvents(parts)))
		a.cfg.Log.Warn("revoked partitions could not be flushed; the next owner replays them", "partitions", revoked[a.cfg.Topic], "err", err)
	}
	a.forget(revoked[a.cfg.Topic])
}

// lost forgets partitions without flushing: another member may own them by
// now, and writing for them would race it.
func (a *Aggregator) lost(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	a.mu.Lock()
	defer a.mu.Unlock()
	var parts []*partition
	for _, id := range lost[a.cfg.Topic] {
		if p := a.parts[id]; p != nil {
			parts = append(parts, p)
		}
	}
	// settle their outcome before forgetting the partitions
	_ = a.reapWriteBack(true)
	_ = a.reapProgress(true)
	_ = a.reapEvents(true)
	a.m.dropped.Add(float64(countEvents(parts)))
	a.cfg.Log.Warn("partitions lost; their unflushed records will be replayed by the next owner", "partitions", lost[a.cfg.Topic])
	a.forget(lost[a.cfg.Topic])
}

func (a *Aggregator) forget(ids []int32) {
	for _, id := range ids {
		delete(a.parts, id)
		a.m.lag.DeleteLabelValues(itoa32(id))
	}
}

func countEvents(parts []*partition) int {
	n := 0
	for _, p := range parts {
		n += len(p.events)
	}
	return n
}
