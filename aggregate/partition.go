package aggregate

import (
	"time"

	"github.com/onair/onair/ingest"
)

// partition is one owned Kafka partition's in-memory state. Only the
// aggregator's poll loop (or a rebalance callback, which the poll loop is
// gated against) touches it, under Aggregator.mu.
type partition struct {
	id int32
	// dirty collapses the progress/play reports taken in since the last Redis
	// write-back: last write wins per (user, biz, item).
	dirty map[key]*state
	// held joins the states written back since the last progress cut: what
	// Redis holds and ClickHouse does not yet, to write back again when
	// Redis loses its data (see redisloss.go).
	held map[key]*state
	// progress holds the stored state of entries written to Redis since the
	// last progress flush, awaiting ClickHouse; later results overwrite
	// earlier ones (Redis state only moves forward).
	progress map[key]progressRow
	// gifts holds the gift records taken in since the last write-back, in
	// offset order, for Config.Rooms.
	gifts []Gift
	// giftsApplied holds the gift records counted in Redis (by us, or by a
	// previous owner below the progress watermark) that onair.events may
	// not hold yet, in offset order: what a room rebuild re-applies.
	giftsApplied []Gift
	// rebuildRooms: Redis lost data; the next write-back rebuilds this
	// partition's share of the room rankings first (rooms.go).
	rebuildRooms bool
	// events holds one row per event taken in, awaiting ClickHouse.
	events []eventRow
	// processed is the offset of the last record taken in, -1 for none.
	processed int64
	// written is the highest offset whose progress is in Redis and, when
	// Redis stored it, among the progress rows: what a progress flush may
	// cover. -1 for none.
	written int64
	epoch   int32
	// watermark is the highest offset known to be in onair.events, -1 for
	// none. Records at or below it get no event row: they were inserted by a
	// previous owner (or by us before a crash).
	watermark int64
	// progressWM is the highest offset whose effect on onair.progress is in
	// ClickHouse, -1 for none. Records at or below it are skipped entirely.
	progressWM int64
	// inCH is the highest offset up to which every record's event row is in
	// onair.events (or needs none), -1 for none: what commits may cover.
	inCH int64
	// committed is the offset last committed to Kafka (next to read).
	committed int64
}

func newPartition(id int32, watermark int64) *partition {
	return &partition{id: id, dirty: make(map[key]*state), held: make(map[key]*state), progress: make(map[key]progressRow),
		processed: -1, written: -1, watermark: watermark, progressWM: -1, inCH: -1, committed: -1}
}

// eventRow is one row of onair.events.
type eventRow struct {
	ev        ingest.Event
	offset    int64
	appended  time.Time // Kafka append time (ingested_at)
	dedupe    bool      // the client gave event_id: check it against retries
	duplicate bool      // set by the dedupe pass: not inserted
}

// progressRow is one row of onair.progress: the stored result of a Redis
// write-back.
type progressRow struct {
	user       uint64
	biz        ingest.Biz
	item       uint64
	positionMs uint64
	durationMs uint64
	finished   bool
	device     string
	tsMs       int64
	posTsMs    int64 // ts of the report that gave the position; 0: none
	// cold: Redis held no entry for it when written (history.Update.Cold),
	// so it is joined with onair.progress before it is inserted.
	cold bool
}
