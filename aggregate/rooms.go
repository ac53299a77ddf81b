package aggregate

import (
	"context"
	"time"

	"github.com/onair/onair/ingest"
)

// RoomSink counts gifts into live rooms' rankings and PK bars (package
// rooms). The write-back hands it every gift record above the
// progress watermark, so after a crash it sees some records again: it must
// count each (partition, offset) once, e.g. by a fence in the script that
// counts. A failed call is retried with the same gifts first, so within a
// partition it sees offsets in order and never a later one before an
// earlier one succeeded.
//
// After a Redis loss the aggregator calls RebuildGifts for the partitions
// it owns, in a write-back job before that job's ApplyGifts (so nothing of
// these partitions is applied meanwhile): the sink must make the share of
// parts in every ranking equal to the gifts ClickHouse holds plus counted,
// re-applied (those above ClickHouse's resume point count, the others are
// skipped), and drop what Redis counted of pending's users since the loss,
// which ApplyGifts then applies. counted holds every gift of parts counted
// in Redis that onair.events may not hold yet; pending is the job's gifts.
// Once that succeeded it records that parts were rebuilt in epoch (the
// Redis epoch's token), and Rebuilt returns that record: partition → the
// epoch of its last rebuild. An aggregator that did not see the loss
// itself (it started, or gained the partition, after it) rebuilds only
// partitions nobody rebuilt in the current epoch: a second rebuild would
// lower fences another owner already moved.
// See DESIGN.md, "Live rooms after a Redis loss".
type RoomSink interface {
	ApplyGifts(ctx context.Context, gifts []Gift) error
	RebuildGifts(ctx context.Context, parts []int32, epoch string, counted, pending []Gift) error
	Rebuilt(ctx context.Context) (map[int32]string, error)
}

// Gift is one gift record as the aggregator took it in. It is ingest's
// type so that a RoomSink needs no import of aggregate.
type Gift = ingest.Placed

// takeGift queues a gift record for the next write-back. One at or below
// the progress watermark was applied by a previous owner: it is only kept
// as applied until onair.events holds it. The caller holds mu.
func (a *Aggregator) takeGift(p *partition, offset int64, appended time.Time, ev *ingest.Event) {
	if a.cfg.Rooms == nil || ev.Type != ingest.TypeGift {
		return
	}
	g := Gift{Partition: p.id, Offset: offset, Appended: appended, Event: *ev}
	switch {
	case offset > p.progressWM:
		p.gifts = append(p.gifts, g)
	case offset > p.watermark:
		p.giftsApplied = append(p.giftsApplied, g)
	}
}

// applied records gifts a write-back counted, and forgets those
// onair.events now holds (a rebuild reads them from there). The caller
// holds mu.
func (p *partition) applied(gifts []Gift) {
	p.giftsApplied = append(p.giftsApplied, gifts...)
	n := 0
	for n < len(p.giftsApplied) && p.giftsApplied[n].Offset <= p.watermark {
		n++
	}
	p.giftsApplied = append(p.giftsApplied[:0], p.giftsApplied[n:]...)
}

// rebuildRooms marks partitions' share of the room rankings for a rebuild
// by the next write-back: all of ids when this aggregator saw Redis lose
// data (seen), else those not rebuilt in the current epoch, if it began
// with a loss. The caller holds mu.
func (a *Aggregator) rebuildRooms(ids []int32, seen bool) {
	if a.cfg.Rooms == nil || len(ids) == 0 || !seen && a.epoch.LostAt == 0 {
		return
	}
	var done map[int32]string
	if !seen {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second) // under mu
		defer cancel()
		var err error
		if done, err = a.cfg.Rooms.Rebuilt(ctx); err != nil {
			a.cfg.Log.Warn("cannot read which partitions' room rankings were rebuilt; rebuilding", "err", err)
		}
	}
	for _, id := range ids {
		if p := a.parts[id]; p != nil && done[id] != a.epoch.Token {
			p.rebuildRooms = true
		}
	}
}

// rebuildDue reports whether p's rebuild can run: it has taken every
// record a previous owner may have counted (up to the progress watermark)
// that onair.events lacks, so they are among giftsApplied. The caller
// holds mu.
func (p *partition) rebuildDue() bool {
	return p.rebuildRooms && max(p.processed, p.watermark) >= p.progressWM
}
