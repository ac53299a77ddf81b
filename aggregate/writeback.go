package aggregate

import (
	"context"
	"time"

	"github.com/onair/onair/history"
)

// writeBack sends the collapsed progress of the given partitions to Redis
// (one pipelined round trip, compare-and-set per entry) and turns what Redis
// now stores into rows for onair.progress. The caller holds mu. On error the
// dirty maps are kept and the next attempt sends them again: Apply is
// idempotent.
func (a *Aggregator) writeBack(ctx context.Context, parts []*partition) error {
	n := 0
	for _, p := range parts {
		n += len(p.dirty)
	}
	if n == 0 {
		return nil
	}
	start := time.Now()
	ups := make([]history.Update, 0, n)
	appended := make([]int64, 0, n)
	owner := make([]*partition, 0, n)
	for _, p := range parts {
		for k, s := range p.dirty {
			ups = append(ups, s.update(k))
			appended = append(appended, s.appendMs)
			owner = append(owner, p)
		}
	}
	applied, err := a.cfg.History.Apply(ctx, ups)
	if err != nil {
		a.m.sinkErrors.WithLabelValues("redis").Inc()
		return err
	}
	now := time.Now().UnixMilli()
	for i := range ups {
		u, p := &ups[i], owner[i]
		if applied[i] {
			p.progress[key{user: u.UserID, biz: u.Biz, item: u.ItemID}] = progressRow{
				user: u.UserID, biz: u.Biz, item: u.ItemID, positionMs: u.PositionMs, durationMs: u.DurationMs,
				finished: a.cfg.History.Finished(u.PositionMs, u.DurationMs), device: u.Device, tsMs: u.TS,
			}
		}
		a.m.visibility.Observe(float64(now-appended[i]) / 1000)
	}
	for _, p := range parts {
		clear(p.dirty)
	}
	a.m.redisWrites.Add(float64(n))
	a.m.flushRows.WithLabelValues("redis").Observe(float64(n))
	a.m.flushSeconds.WithLabelValues("redis").Observe(time.Since(start).Seconds())
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
