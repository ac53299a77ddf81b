package aggregate

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// eventColumns are the stored columns of onair.events (0040_compact_events;
// ts_ms is an ALIAS of ts and ts_msec).
const eventColumns = "event_id, type, user_id, biz, item_id, ts, ts_msec, position_ms, duration_ms, listened_ms, " +
	"station_id, room_id, anchor_id, gift_id, value, device, text, kafka_partition, kafka_offset, ingested_at"

const progressColumns = "user_id, biz, item_id, position_ms, duration_ms, finished, device, updated_at, ts_ms, version, position_ts_ms"

// watermarks returns, per partition, the highest Kafka offset already in
// onair.events (absent: none). This is the exactly-once resume point.
//
// It scans two narrow columns of the table; at 10^8 rows that is a fraction
// of a second, paid once per assignment. Retention and erasure (package
// lifecycle) delete rows of events, which may carry the highest offset:
// they copy the point to aggregate_offsets (sink "events") first, and the
// larger of the two counts.
func (a *Aggregator) watermarks(ctx context.Context, parts []int32) (map[int32]int64, error) {
	in, err := a.maxOffsets(ctx, parts, "SELECT kafka_partition, max(kafka_offset) FROM "+a.cfg.Database+".events WHERE kafka_partition IN (%s) GROUP BY kafka_partition")
	if err != nil {
		return nil, err
	}
	kept, err := a.maxOffsets(ctx, parts, "SELECT partition, max(offset) FROM "+a.cfg.Database+".aggregate_offsets WHERE topic = ? AND sink = 'events' AND partition IN (%s) GROUP BY partition", a.cfg.Topic)
	if err != nil {
		return nil, err
	}
	for p, off := range kept {
		if cur, ok := in[p]; !ok || off > cur {
			in[p] = off
		}
	}
	return in, nil
}

// progressOffsets returns, per partition, the offset up to which
// onair.progress holds every effect (absent: none).
func (a *Aggregator) progressOffsets(ctx context.Context, parts []int32) (map[int32]int64, error) {
	return a.maxOffsets(ctx, parts, "SELECT partition, max(offset) FROM "+a.cfg.Database+".aggregate_offsets WHERE topic = ? AND sink = 'progress' AND partition IN (%s) GROUP BY partition", a.cfg.Topic)
}

// maxOffsets runs a (partition, offset) query whose %s is the partition list.
func (a *Aggregator) maxOffsets(ctx context.Context, parts []int32, query string, args ...any) (map[int32]int64, error) {
	out := make(map[int32]int64, len(parts))
	if len(parts) == 0 {
		return out, nil
	}
	ids := make([]string, len(parts))
	for i, p := range parts {
		ids[i] = strconv.Itoa(int(p))
	}
	rows, err := a.cfg.ClickHouse.Query(ctx, fmt.Sprintf(query, strings.Join(ids, ",")), args...)
	if err != nil {
		return nil, fmt.Errorf("cannot read offsets of %d partitions: %w", len(parts), err)
	}
	defer rows.Close()
	for rows.Next() {
		var p uint32
		var off uint64
		if err := rows.Scan(&p, &off); err != nil {
			return nil, err
		}
		out[int32(p)] = int64(off)
	}
	return out, rows.Err()
}

// insertOffsets records that onair.progress holds every effect of each
// partition up to the given offset.
func (a *Aggregator) insertOffsets(ctx context.Context, upto map[int32]int64) error {
	var topics, sinks []string
	var ids []uint32
	var offs []uint64
	for id, off := range upto {
		topics, sinks = append(topics, a.cfg.Topic), append(sinks, "progress")
		ids, offs = append(ids, uint32(id)), append(offs, uint64(off))
	}
	if len(ids) == 0 {
		return nil
	}
	return a.insertColumns(ctx, "aggregate_offsets", "topic, partition, sink, offset", []any{topics, ids, sinks, offs})
}

// insertProgress writes the rows of every partition in one INSERT. Replays
// are harmless: ReplacingMergeTree keeps the highest version per key.
func (a *Aggregator) insertProgress(ctx context.Context, parts map[int32]map[key]progressRow) (int, error) {
	n := 0
	for _, rows := range parts {
		n += len(rows)
	}
	if n == 0 {
		return 0, nil
	}
	var (
		users, items, pos, dur, tsMs, version = make([]uint64, 0, n), make([]uint64, 0, n), make([]uint64, 0, n), make([]uint64, 0, n), make([]uint64, 0, n), make([]uint64, 0, n)
		posTS                                 = make([]uint64, 0, n)
		bizes                                 = make([]string, 0, n)
		finished                              = make([]uint8, 0, n)
		devices                               = make([]string, 0, n)
		updated                               = make([]time.Time, 0, n)
	)
	for _, rows := range parts {
		for _, r := range rows {
			users = append(users, r.user)
			bizes = append(bizes, r.biz.String())
			items = append(items, r.item)
			pos = append(pos, r.positionMs)
			dur = append(dur, r.durationMs)
			f := uint8(0)
			if r.finished {
				f = 1
			}
			finished = append(finished, f)
			devices = append(devices, r.device)
			updated = append(updated, time.UnixMilli(r.tsMs))
			tsMs = append(tsMs, uint64(r.tsMs))
			version = append(version, uint64(r.tsMs))
			posTS = append(posTS, uint64(r.posTsMs))
		}
	}
	cols := []any{users, bizes, items, pos, dur, finished, devices, updated, tsMs, version, posTS}
	return n, a.insertColumns(ctx, "progress", progressColumns, cols)
}

// insertEvents writes every non-duplicate event row of every partition in one
// INSERT, which ClickHouse applies as one block: all of it or none of it. The
// caller keeps a flush inside one month of ingested_at, the table's partition
// key, so the block is never split.
func (a *Aggregator) insertEvents(ctx context.Context, parts []*partition) (int, error) {
	n := 0
	for _, p := range parts {
		n += len(p.events)
	}
	if n == 0 {
		return 0, nil
	}
	var (
		ids, types, bizes, devices, texts = make([]string, 0, n), make([]string, 0, n), make([]string, 0, n), make([]string, 0, n), make([]string, 0, n)
		users, items, pos, dur            = make([]uint64, 0, n), make([]uint64, 0, n), make([]uint64, 0, n), make([]uint64, 0, n)
		msecs                             = make([]uint16, 0, n)
		listened, stations, rooms         = make([]uint64, 0, n), make([]uint64, 0, n), make([]uint64, 0, n)
		anchors, gifts, values, offsets   = make([]uint64, 0, n), make([]uint64, 0, n), make([]uint64, 0, n), make([]uint64, 0, n)
		kparts                            = make([]uint32, 0, n)
		ts, ingested                      = make([]time.Time, 0, n), make([]time.Time, 0, n)
	)
	written := 0
	for _, p := range parts {
		for i := range p.events {
			r := &p.events[i]
			if r.duplicate {
				continue
			}
			e := &r.ev
			// A server-assigned id is not stored: nobody outside sees it,
			// and it cost ~13 bytes a row.
			if e.ServerID {
				ids = append(ids, "")
			} else {
				ids = append(ids, e.EventID)
			}
			types = append(types, e.Type.String())
			users = append(users, e.UserID)
			bizes = append(bizes, e.Biz.String())
			items = append(items, e.ItemID)
			ts = append(ts, time.UnixMilli(e.TS))
			msecs = append(msecs, uint16(e.TS%1000))
			pos = append(pos, e.PositionMs)
			dur = append(dur, e.DurationMs)
			listened = append(listened, e.ListenedMs)
			stations = append(stations, e.StationID)
			rooms = append(rooms, e.RoomID)
			anchors = append(anchors, e.AnchorID)
			gifts = append(gifts, e.GiftID)
			values = append(values, e.Value)
			devices = append(devices, e.Device)
			texts = append(texts, e.Text)
			kparts = append(kparts, uint32(p.id))
			offsets = append(offsets, 0) // see blockOffset below
			ingested = append(ingested, r.appended)
			written++
		}
		if len(offsets) > 0 && kparts[len(kparts)-1] == uint32(p.id) {
			offsets[len(offsets)-1] = blockOffset(p)
		}
	}
	if written == 0 {
		return 0, nil
	}
	cols := []any{ids, types, users, bizes, items, ts, msecs, pos, dur, listened, stations, rooms, anchors, gifts, values, devices, texts, kparts, offsets, ingested}
	return written, a.insertColumns(withQueryID(ctx, eventsQueryID(parts)), "events", eventColumns, cols)
}

// blockOffset is the kafka_offset of the last row of p in an INSERT block:
// the highest offset of p's rows, duplicates included; every other row
// holds 0. The block lands whole or not at all, so max(kafka_offset) per
// partition, the resume point, is what it would be with an offset on every
// row, for ~4 bytes a row less (0040_compact_events).
func blockOffset(p *partition) uint64 { return uint64(p.events[len(p.events)-1].offset) }

// insertColumns sends one columnar INSERT. PrepareBatch needs the explicit
// column list on ClickHouse 18.16.
func (a *Aggregator) insertColumns(ctx context.Context, table, columns string, cols []any) error {
	batch, err := a.cfg.ClickHouse.PrepareBatch(ctx, "INSERT INTO "+a.cfg.Database+"."+table+" ("+columns+")")
	if err != nil {
		return fmt.Errorf("cannot prepare insert into %s: %w", table, err)
	}
	defer batch.Abort() //nolint:errcheck // no-op after Send
	for i, c := range cols {
		if err := batch.Column(i).Append(c); err != nil {
			return fmt.Errorf("cannot append column %d of %s: %w", i, table, err)
		}
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("cannot insert into %s: %w", table, err)
	}
	return nil
}
