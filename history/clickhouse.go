package history

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/onair/onair/ingest"
)

// opsView is one user's history_ops folded into what reads need. ClickHouse
// keeps every op for good, so it is the truth after Redis lost a user.
type opsView struct {
	tomb   map[string]int64 // member -> newest delete time
	wm     [8]int64         // clear watermark per biz; [0] = clear of all
	hide   map[string]int64 // member -> newest hide time
	pauses [][2]int64       // [start, end) intervals; end = MaxInt64 while paused
	// pauseState is what warm.lua expects: "" (no pause ops), "resume" or
	// the start of the current pause in ms.
	pauseState string
}

// gone reports whether a report at ts on m is covered by a delete or clear.
func (o *opsView) gone(m string, biz ingest.Biz, ts int64) bool {
	return ts <= o.tomb[m] || ts <= o.wm[0] || (int(biz) < len(o.wm) && ts <= o.wm[biz])
}

// offTimeline reports whether a report at ts happened while history was
// paused: it keeps a resume point but stays off the timeline.
func (o *opsView) offTimeline(ts int64) bool {
	for _, p := range o.pauses {
		if ts >= p[0] && ts < p[1] {
			return true
		}
	}
	return false
}

func (s *Store) loadOps(ctx context.Context, uid uint64) (*opsView, error) {
	rows, err := s.ch.Query(ctx, "SELECT CAST(op AS UInt8), CAST(biz AS UInt8), item_id, ts_ms FROM "+s.db+
		".history_ops WHERE user_id = ? ORDER BY ts_ms, op", uid)
	if err != nil {
		return nil, fmt.Errorf("history: cannot read ops of user %d from ClickHouse: %w", uid, err)
	}
	defer rows.Close()
	o := &opsView{tomb: map[string]int64{}, hide: map[string]int64{}}
	for rows.Next() {
		var op, biz uint8
		var item, ts uint64
		if err := rows.Scan(&op, &biz, &item, &ts); err != nil {
			return nil, fmt.Errorf("history: cannot scan ops of user %d: %w", uid, err)
		}
		t := int64(ts)
		switch op {
		case 1: // delete
			m := member(ingest.Biz(biz), item)
			o.tomb[m] = max(o.tomb[m], t)
		case 2: // clear
			if int(biz) < len(o.wm) {
				o.wm[biz] = max(o.wm[biz], t)
			}
		case 3: // pause
			if n := len(o.pauses); n == 0 || o.pauses[n-1][1] != math.MaxInt64 {
				o.pauses = append(o.pauses, [2]int64{t, math.MaxInt64})
				o.pauseState = strconv.FormatInt(t, 10)
			}
		case 4: // resume
			if n := len(o.pauses); n > 0 && o.pauses[n-1][1] == math.MaxInt64 {
				o.pauses[n-1][1] = t
			}
			o.pauseState = "resume"
		case 5: // hide
			m := member(ingest.Biz(biz), item)
			o.hide[m] = max(o.hide[m], t)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("history: cannot read ops of user %d: %w", uid, err)
	}
	return o, nil
}

// chEntry is one progress row read back from ClickHouse.
type chEntry struct {
	Entry
	member     string
	onTimeline bool
	hidden     bool
	posTS      int64 // client ts of the report that gave the position
}

// chScan reads up to n of the user's progress rows after cursor c, in page
// order (ts desc, member desc), dropping deleted/cleared rows. When
// withOffTimeline is false it also drops rows reported while paused, and
// skip (if set) drops rows Redis still holds. The progress table is read
// with FINAL: one row per item, the newest version (client ts).
func (s *Store) chScan(ctx context.Context, uid uint64, biz ingest.Biz, c cursor, n int, o *opsView, withOffTimeline bool,
	skip func([]chEntry) (map[string]bool, error)) ([]chEntry, error) {
	var out []chEntry
	for len(out) < n {
		batch := min(2*(n-len(out))+16, 2000)
		var q strings.Builder
		args := []any{uid}
		q.WriteString("SELECT CAST(biz AS UInt8) AS b, item_id, position_ms, duration_ms, finished, device, ts_ms, position_ts_ms, " +
			"concat(toString(CAST(biz AS UInt8)), ':', toString(item_id)) AS m FROM ")
		q.WriteString(s.db)
		q.WriteString(".progress FINAL WHERE user_id = ? AND ts_ms > ?")
		floor := o.wm[0]
		if biz != 0 {
			q.WriteString(" AND b = ?")
			floor = max(floor, o.wm[biz])
			args = append(args, floor, uint8(biz))
		} else {
			args = append(args, floor)
		}
		if !c.first() {
			q.WriteString(" AND (ts_ms < ? OR (ts_ms = ? AND m < ?))")
			args = append(args, c.score, c.score, c.member)
		}
		q.WriteString(" ORDER BY ts_ms DESC, m DESC LIMIT ?")
		args = append(args, batch)
		rows, err := s.ch.Query(ctx, q.String(), args...)
		if err != nil {
			return nil, fmt.Errorf("history: cannot read progress of user %d from ClickHouse: %w", uid, err)
		}
		var got []chEntry
		for rows.Next() {
			var e chEntry
			var b, fin uint8
			var ts, posTS uint64
			if err := rows.Scan(&b, &e.ItemID, &e.PositionMs, &e.DurationMs, &fin, &e.Device, &ts, &posTS, &e.member); err != nil {
				rows.Close()
				return nil, fmt.Errorf("history: cannot scan progress of user %d: %w", uid, err)
			}
			e.Biz, e.Finished, e.UpdatedAt, e.posTS = ingest.Biz(b), fin != 0, int64(ts), int64(posTS)
			if e.PositionMs == 0 {
				e.posTS = 0 // no position: nothing for the position maximum
			}
			got = append(got, e)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("history: cannot read progress of user %d: %w", uid, err)
		}
		if len(got) == 0 {
			break
		}
		last := got[len(got)-1]
		c = cursor{score: last.UpdatedAt, member: last.member}
		var inRedis map[string]bool
		if skip != nil {
			if inRedis, err = skip(got); err != nil {
				return nil, err
			}
		}
		for _, e := range got {
			if o.gone(e.member, e.Biz, e.UpdatedAt) || inRedis[e.member] {
				continue
			}
			e.onTimeline = !o.offTimeline(e.UpdatedAt)
			if !e.onTimeline && !withOffTimeline {
				continue
			}
			e.hidden = o.hide[e.member] >= e.UpdatedAt
			if len(out) < n {
				out = append(out, e)
			}
		}
		if len(got) < batch {
			break
		}
	}
	return out, nil
}

// chItems reads the given items' progress from ClickHouse, minus deleted,
// cleared and ones it does not have.
func (s *Store) chItems(ctx context.Context, uid uint64, keys []ItemKey, o *opsView) ([]chEntry, error) {
	// members are digits and ':' only, so they are safe to inline
	var in strings.Builder
	for i, k := range keys {
		if i > 0 {
			in.WriteByte(',')
		}
		in.WriteString("'" + member(k.Biz, k.ItemID) + "'")
	}
	rows, err := s.ch.Query(ctx, "SELECT CAST(biz AS UInt8) AS b, item_id, position_ms, duration_ms, finished, device, ts_ms, "+
		"concat(toString(CAST(biz AS UInt8)), ':', toString(item_id)) AS m FROM "+s.db+
		".progress FINAL WHERE user_id = ? AND m IN ("+in.String()+")", uid)
	if err != nil {
		return nil, fmt.Errorf("history: cannot read %d items of user %d from ClickHouse: %w", len(keys), uid, err)
	}
	defer rows.Close()
	var out []chEntry
	for rows.Next() {
		var e chEntry
		var b, fin uint8
		var ts uint64
		if err := rows.Scan(&b, &e.ItemID, &e.PositionMs, &e.DurationMs, &fin, &e.Device, &ts, &e.member); err != nil {
			return nil, fmt.Errorf("history: cannot scan progress of user %d: %w", uid, err)
		}
		e.Biz, e.Finished, e.UpdatedAt = ingest.Biz(b), fin != 0, int64(ts)
		if !o.gone(e.member, e.Biz, e.UpdatedAt) {
			out = append(out, e)
		}
	}
	return out, rows.Err()
}
