package aggregate

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/onair/onair/history"
)

// writeBackJob is one Redis write-back running in the background, so the
// poll loop keeps fetching and decoding while Redis applies: a slow
// round trip delays history, never the intake. One runs at a time; while
// it does, new reports collapse into fresh dirty maps.
type writeBackJob struct {
	ups    []history.Update
	states []*state     // ups[i]'s collapsed state, merged back on failure
	owner  []*partition // ups[i]'s partition
	// upto is each partition's processed offset at the cut: once the job
	// succeeds, every report up to it is in Redis.
	upto    map[*partition]int64
	applied []bool // set by the job before done
	// epoch is the Redis epoch when the job was cut; lossSeen is set by the
	// job when the epoch read after Apply differs: Redis lost data before
	// or during the job, so its results may lack older state.
	epoch    string
	lossSeen bool
	// gifts are the gift records cut for Config.Rooms, per partition; on
	// failure they go back in front of what came since.
	gifts map[*partition][]Gift
	// rebuild lists the partitions whose share of the room rankings is
	// rebuilt before gifts are applied (Redis lost data); counted holds
	// their gifts counted before that onair.events may not hold yet.
	rebuild []int32
	counted []Gift
	done    chan error
}

// writeBack sends the collapsed progress of the given partitions to Redis
// (pipelined, a compare-and-set per entry) in a background job, unless one
// is running; with wait it first waits for the running one, then for its
// own, and returns its outcome. The caller holds mu.
func (a *Aggregator) writeBack(ctx context.Context, parts []*partition, wait bool) error {
	if !wait {
		a.startWriteBack(context.WithoutCancel(ctx), parts)
		return nil
	}
	if err := a.reapWriteBack(true); err != nil {
		// its entries are back in the dirty maps: they go again now
		a.cfg.Log.Warn("earlier write-back failed; writing back again", "err", err)
	}
	a.startWriteBack(ctx, parts)
	return a.reapWriteBack(true)
}

// startWriteBack cuts the dirty maps of parts into a job and starts it.
// With nothing dirty, every processed report is already in Redis. The
// caller holds mu.
func (a *Aggregator) startWriteBack(ctx context.Context, parts []*partition) {
	if a.wb != nil {
		return
	}
	n, g, rebuild := 0, 0, false
	for _, p := range parts {
		n, g = n+len(p.dirty), g+len(p.gifts)
		rebuild = rebuild || p.rebuildDue()
	}
	if n == 0 && g == 0 && !rebuild {
		for _, p := range parts {
			p.written = p.processed
		}
		return
	}
	job := &writeBackJob{
		ups: make([]history.Update, 0, n), states: make([]*state, 0, n),
		owner: make([]*partition, 0, n),
		upto:  make(map[*partition]int64, len(parts)), done: make(chan error, 1),
		epoch: a.epoch.Token,
		gifts: make(map[*partition][]Gift),
	}
	gifts := make([]Gift, 0, g)
	for _, p := range parts {
		if p.rebuildDue() {
			p.applied(nil)
			job.rebuild = append(job.rebuild, p.id)
			job.counted = append(job.counted, p.giftsApplied...)
		}
		if len(p.gifts) > 0 {
			job.gifts[p], p.gifts = p.gifts, nil
			gifts = append(gifts, job.gifts[p]...)
		}
		for k, s := range p.dirty {
			job.ups = append(job.ups, s.update(k))
			job.states = append(job.states, s)
			job.owner = append(job.owner, p)
		}
		job.upto[p] = p.processed
		if len(p.dirty) > 0 {
			p.dirty = make(map[key]*state, len(p.dirty))
		}
	}
	a.wb = job
	go func() {
		ctx, cancel := context.WithTimeout(ctx, flushTimeout)
		defer cancel()
		err := a.runWriteBack(ctx, job, gifts)
		if err != nil {
			a.m.sinkErrors.WithLabelValues("redis").Inc()
		}
		job.done <- err
	}()
}

// runWriteBack is the job's work, in the order the invariants need: the
// history entries (Apply), then — after a Redis loss — the rebuild of the
// partitions' share of the room rankings, then the gifts on top of it, and
// last the epoch, read after Apply so that a loss before it shows
// (lossSeen). It runs without mu and touches only the job.
func (a *Aggregator) runWriteBack(ctx context.Context, job *writeBackJob, gifts []Gift) error {
	start := time.Now()
	if len(job.ups) > 0 {
		applied, err := a.cfg.History.Apply(ctx, job.ups)
		if err != nil {
			return err
		}
		job.applied = applied
	}
	if len(job.rebuild) > 0 {
		if err := a.cfg.Rooms.RebuildGifts(ctx, job.rebuild, job.epoch, job.counted, gifts); err != nil {
			return err
		}
	}
	if len(gifts) > 0 {
		if err := a.cfg.Rooms.ApplyGifts(ctx, gifts); err != nil {
			return err
		}
	}
	ep, err := a.cfg.History.Epoch(ctx)
	if err != nil {
		return err
	}
	job.lossSeen = ep.Token != job.epoch
	now := time.Now().UnixMilli()
	for _, s := range job.states {
		a.m.visibility.Observe(float64(now-s.appendMs) / 1000)
	}
	a.m.redisWrites.Add(float64(len(job.ups)))
	a.m.wbEntries.Observe(float64(len(job.ups)))
	a.m.wbSeconds.Observe(time.Since(start).Seconds())
	return nil
}

// reapWriteBack applies the outcome of the running write-back once it is
// done (waiting for it with wait): what Redis now stores becomes rows for
// onair.progress and the partitions' written offsets advance; on failure
// the entries go back into the dirty maps, joined with what came since
// (state merges in any order), for the retry. Partitions no longer owned
// are skipped. The caller holds mu.
func (a *Aggregator) reapWriteBack(wait bool) error {
	job := a.wb
	if job == nil {
		return nil
	}
	done, err := outcome(job.done, wait)
	if !done {
		return nil
	}
	a.wb = nil
	if err != nil {
		for i, s := range job.states {
			p := job.owner[i]
			if a.parts[p.id] != p {
				continue
			}
			joinState(p.dirty, key{user: job.ups[i].UserID, biz: job.ups[i].Biz, item: job.ups[i].ItemID}, s)
		}
		for p, gs := range job.gifts {
			if a.parts[p.id] == p {
				p.gifts = append(gs, p.gifts...)
			}
		}
		return fmt.Errorf("redis write-back: %w", err)
	}
	for i := range job.ups {
		u, p := &job.ups[i], job.owner[i]
		if a.parts[p.id] != p {
			continue
		}
		k := key{user: u.UserID, biz: u.Biz, item: u.ItemID}
		joinState(p.held, k, job.states[i])
		if !job.applied[i] {
			continue
		}
		p.progress[k] = progressRow{
			user: u.UserID, biz: u.Biz, item: u.ItemID, positionMs: u.PositionMs, durationMs: u.DurationMs,
			finished: a.cfg.History.Finished(u.PositionMs, u.DurationMs), device: u.Device, tsMs: u.TS, posTsMs: u.PosTS,
			cold: u.ColdTrimmed || u.Cold && (job.lossSeen || a.epoch.LostAt > 0) || p.progress[k].cold,
		}
	}
	for p, upto := range job.upto {
		if a.parts[p.id] == p {
			p.written = max(p.written, upto)
			p.applied(job.gifts[p])
			p.rebuildRooms = p.rebuildRooms && !slices.Contains(job.rebuild, p.id)
		}
	}
	return nil
}

// update is the history write-back of one collapsed entry.
func (s *state) update(k key) history.Update {
	u := history.Update{
		UserID: k.user, Biz: k.biz, ItemID: k.item,
		TS: s.touch.ts, Device: s.touch.device, EventID: s.touch.eventID,
		Play: s.touch.play, DurationMs: s.touch.durationMs,
	}
	if s.pos.ts != 0 {
		u.PositionMs, u.DurationMs, u.PosTS = s.pos.positionMs, s.pos.durationMs, s.pos.ts
		u.Play = false
	}
	return u
}

// joinState merges s into m[k], taking s itself when m has no state for k:
// the caller hands s over and must not use it again.
func joinState(m map[key]*state, k key, s *state) {
	if cur := m[k]; cur != nil {
		cur.merge(s)
	} else {
		m[k] = s
	}
}
