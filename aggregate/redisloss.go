package aggregate

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/onair/onair/history"
	"github.com/onair/onair/ingest"
)

// Redis is a copy: when it loses its data, readers re-warm each user from
// onair.progress, which lags Redis by up to ProgressFlush. What Redis held
// beyond ClickHouse is exactly what this aggregator wrote back since its
// last progress flush, so it keeps that as states (partition.held, the
// running progress job's held) and writes them back again when it sees the
// loss. Apply is a compare-and-set join and warm.lua joins the same way,
// so it does not matter whether a reader re-warmed first.
//
// The loss is seen through history's epoch sentinel, checked every
// RedisFlush. One race remains: a progress flush that lands after the
// loss but is reaped before the check sees it; a reader that re-warmed in
// between missed those rows. So a finished flush's states are retired, not
// dropped, until a check that began after it finished confirms the epoch.
//
// The other direction matters too: a write-back into a Redis that lost
// data stores only what was applied since, and its row would replace a
// newer position in onair.progress with an older one (a play after the
// loss, say). Such rows are cold (Update.Cold, writeBackJob.lossSeen) and
// joinCold joins them with onair.progress before they are inserted.

// epochCheck is one read of the Redis epoch, in the background.
type epochCheck struct {
	start time.Time
	ep    history.Epoch
	err   error
	done  chan struct{}
}

// retiredHeld is the held states of a finished progress flush.
type retiredHeld struct {
	held map[int32]map[key]*state
	at   time.Time
}

// retire keeps the held states of a progress flush that just succeeded.
// The caller holds mu.
func (a *Aggregator) retire(held map[int32]map[key]*state) {
	if len(held) > 0 {
		a.retired = append(a.retired, retiredHeld{held: held, at: time.Now()})
	}
}

// checkEpoch reaps a finished epoch check and starts the next one every
// RedisFlush. The caller holds mu.
func (a *Aggregator) checkEpoch(now time.Time) {
	if c := a.check; c != nil {
		select {
		case <-c.done:
		default:
			return
		}
		a.check = nil
		a.reapEpoch(c)
	}
	if now.Sub(a.lastCheck) < a.cfg.RedisFlush {
		return
	}
	a.lastCheck = now
	c := &epochCheck{start: now, done: make(chan struct{})}
	a.check = c
	go func() {
		defer close(c.done)
		ctx, cancel := context.WithTimeout(context.Background(), flushTimeout)
		defer cancel()
		c.ep, c.err = a.cfg.History.Epoch(ctx)
	}()
}

// reapEpoch acts on a finished check: the same epoch confirms every flush
// retired before the check began; a new one means Redis lost its data.
// The caller holds mu.
func (a *Aggregator) reapEpoch(c *epochCheck) {
	switch {
	case c.err != nil:
		// Redis is unreachable: the write-back fails and retries (and
		// warns) too; the next check decides.
		a.m.sinkErrors.WithLabelValues("redis").Inc()
		a.cfg.Log.Debug("cannot read the Redis epoch", "err", c.err)
	case c.ep.Token == a.epoch.Token:
		n := 0
		for n < len(a.retired) && a.retired[n].at.Before(c.start) {
			n++
		}
		a.retired = append(a.retired[:0], a.retired[n:]...)
	default:
		a.rewriteHeld(c.ep)
	}
}

// rewriteHeld puts every state Redis may have lost back into the dirty
// maps, for the next write-back: the held states, those of the running
// progress flush and the retired ones. The first epoch this aggregator
// sees finds nothing held. The caller holds mu.
func (a *Aggregator) rewriteHeld(ep history.Epoch) {
	first := a.epoch.Token == ""
	// the running write-back's states join held (or go back to dirty)
	if err := a.reapWriteBack(true); err != nil {
		a.cfg.Log.Warn("write-back failed while Redis was lost; writing back again", "err", err)
	}
	n := 0
	for id, p := range a.parts {
		n += redo(p.dirty, p.held)
		if a.job != nil {
			n += redo(p.dirty, a.job.held[id])
		}
		for _, r := range a.retired {
			n += redo(p.dirty, r.held[id])
		}
	}
	a.retired = nil
	a.epoch = ep
	ids := make([]int32, 0, len(a.parts))
	for id := range a.parts {
		ids = append(ids, id)
	}
	a.rebuildRooms(ids, !first)
	if first {
		return
	}
	a.m.redisLosses.Inc()
	a.cfg.Log.Warn("Redis lost its data; writing back the history not yet in ClickHouse",
		"epoch", ep.Token, "entries", n)
}

// redo joins copies of the states of from into dirty (from keeps its own).
func redo(dirty, from map[key]*state) int {
	for k, s := range from {
		c := *s
		joinState(dirty, k, &c)
	}
	return len(from)
}

// joinCold joins rows that Redis wrote without older state (progressRow.cold:
// its keys were lost, or the item was trimmed) with what onair.progress
// holds, so that a row never replaces a newer position with an older one.
// The join is done by Redis: each ClickHouse row is applied as a report
// (compare-and-set, position time = its ts, as a re-warm does), which also
// completes the Redis entry, and the stored state becomes the row. Runs in
// the progress job; rows may be updated in place.
func (a *Aggregator) joinCold(ctx context.Context, rows map[int32]map[key]progressRow) error {
	var keys []key
	for _, rs := range rows {
		for k, r := range rs {
			if r.cold {
				keys = append(keys, k)
			}
		}
	}
	if len(keys) == 0 {
		return nil
	}
	old, err := a.progressOf(ctx, keys)
	if err != nil {
		return err
	}
	var ups []history.Update
	for _, rs := range rows {
		for k, r := range rs {
			u, ok := old[k]
			if !r.cold || !ok {
				continue
			}
			ups = append(ups, u)
			r.cold = false
			rs[k] = r
		}
	}
	if len(ups) == 0 {
		return nil
	}
	applied, err := a.cfg.History.Apply(ctx, ups)
	if err != nil {
		return fmt.Errorf("cannot join %d rows with onair.progress in Redis: %w", len(ups), err)
	}
	for i, u := range ups {
		if !applied[i] {
			continue // Redis already held at least as much
		}
		k := key{user: u.UserID, biz: u.Biz, item: u.ItemID}
		for _, rs := range rows {
			if r, ok := rs[k]; ok {
				r.positionMs, r.durationMs, r.device, r.tsMs, r.posTsMs = u.PositionMs, u.DurationMs, u.Device, u.TS, u.PosTS
				r.finished = a.cfg.History.Finished(u.PositionMs, u.DurationMs)
				rs[k] = r
			}
		}
	}
	return nil
}

// progressLookupKeys bounds the keys of one progressOf query. ClickHouse
// refuses a query text past max_query_size (256 KiB by default): at up to
// 42 bytes a key ("(user,item),"), 4 000 keys stay under 170 KiB. Without
// the bound a progress flush with ~17 000 cold rows or more failed on every
// retry, and its rows piled up in memory for good (issue 31).
const progressLookupKeys = 4000

// progressOf reads the rows of onair.progress of keys, as reports: point
// lookups by the table's key (biz is matched here), in queries of at most
// progressLookupKeys keys, each over one contiguous range of users so that
// the primary key bounds what FINAL reads.
func (a *Aggregator) progressOf(ctx context.Context, keys []key) (map[key]history.Update, error) {
	keys = slices.Clone(keys)
	slices.SortFunc(keys, func(x, y key) int {
		return cmp.Or(cmp.Compare(x.user, y.user), cmp.Compare(x.item, y.item), cmp.Compare(x.biz, y.biz))
	})
	out := make(map[key]history.Update, len(keys))
	for chunk := range slices.Chunk(keys, progressLookupKeys) {
		if err := a.progressChunk(ctx, chunk, out); err != nil {
			return nil, fmt.Errorf("cannot read %d rows of onair.progress: %w", len(keys), err)
		}
	}
	return out, nil
}

// progressChunk reads one query's worth of progressOf into out; keys are
// sorted by user.
func (a *Aggregator) progressChunk(ctx context.Context, keys []key, out map[key]history.Update) error {
	var q strings.Builder
	q.Grow(32 * len(keys))
	fmt.Fprintf(&q, "SELECT user_id, CAST(biz AS UInt8), item_id, position_ms, duration_ms, device, ts_ms, position_ts_ms FROM %s.progress FINAL "+
		"WHERE user_id BETWEEN %d AND %d AND (user_id, item_id) IN (", a.cfg.Database, keys[0].user, keys[len(keys)-1].user)
	want := make(map[key]bool, len(keys))
	for i, k := range keys {
		if i > 0 {
			q.WriteByte(',')
		}
		q.WriteString("(" + strconv.FormatUint(k.user, 10) + "," + strconv.FormatUint(k.item, 10) + ")")
		want[k] = true
	}
	q.WriteByte(')')
	rows, err := a.cfg.ClickHouse.Query(ctx, q.String())
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var u history.Update
		var biz uint8
		var ts, posTS uint64
		if err := rows.Scan(&u.UserID, &biz, &u.ItemID, &u.PositionMs, &u.DurationMs, &u.Device, &ts, &posTS); err != nil {
			return err
		}
		u.Biz, u.TS = ingest.Biz(biz), int64(ts)
		if u.PositionMs > 0 {
			u.PosTS = int64(posTS)
		} else {
			u.Play = true // no position to join, only the touch
		}
		if k := (key{user: u.UserID, biz: u.Biz, item: u.ItemID}); want[k] {
			out[k] = u
		}
	}
	return rows.Err()
}
