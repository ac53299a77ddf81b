package aggregate

import (
	"context"
	"time"

	"github.com/onair/onair/ingest"
)

// RoomSink counts gifts into live rooms' rankings and PK bars (package
// push/board). The write-back hands it every gift record above the
// progress watermark, so after a crash it sees some records again: it must
// count each (partition, offset) once, e.g. by a fence in the script that
// counts. A failed call is retried with the same gifts first, so within a
// partition it sees offsets in order and never a later one before an
// earlier one succeeded.
type RoomSink interface {
	ApplyGifts(ctx context.Context, gifts []Gift) error
}

// Gift is one gift record as the aggregator took it in. It is ingest's
// type so that a RoomSink needs no import of aggregate.
type Gift = ingest.Placed

// takeGift queues a gift record for the next write-back. The caller holds mu.
func (a *Aggregator) takeGift(p *partition, offset int64, appended time.Time, ev *ingest.Event) {
	if a.cfg.Rooms == nil || ev.Type != ingest.TypeGift || offset <= p.progressWM {
		return
	}
	p.gifts = append(p.gifts, Gift{Partition: p.id, Offset: offset, Appended: appended, Event: *ev})
}
