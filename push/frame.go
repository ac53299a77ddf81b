package push

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/onair/onair/rooms/wire"
)

// The gateway's own frame types, as in docs/api.md "Live rooms: WebSocket";
// the room frames it fans out are typed in package wire (rooms/wire).
const (
	TypeBatch    = "batch"
	TypeSnapshot = "snapshot"
	TypePong     = "pong"
)

// class is a frame's delivery class; it decides what a slow connection
// loses first and how a room merges frames within a tick.
type class uint8

const (
	// classDanmaku frames may be shed (a flooded room, a slow client).
	classDanmaku class = iota
	// classGift frames carry an id, are tracked until acked and re-sent once.
	classGift
	// classState frames (leaderboard, pk, room, online) carry a version;
	// only the latest per room and type is sent each tick.
	classState
)

// level is what a connection still receives. A slow connection steps down
// one level at a time and is closed after the last.
type level int32

const (
	levelAll       level = 0 // every frame
	levelNoDanmaku level = 1 // gifts and state
	levelState     level = 2 // state only
	numLevels            = 3
)

var levelNames = [numLevels]string{"all", "no_danmaku", "state_only"}

// receives reports whether a connection at level l gets frames of class k.
func (l level) receives(k class) bool { return int(k) >= int(l) }

// frame is one room message as consumed from the pushes topic.
type frame struct {
	typ     string
	class   class
	seq     int64     // Kafka offset for danmaku and gifts; 0 for state frames
	version int64     // state frames
	id      string    // gifts (and danmaku: the event id)
	pkID    string    // pk frames: a new PK restarts its versions
	raw     []byte    // the JSON the client sees, seq included
	at      time.Time // the record's Kafka timestamp (zero when read from Redis)
}

// frameHead is the part of a frame the gateway reads; the rest passes
// through untouched.
type frameHead struct {
	Type    string `json:"type"`
	RoomID  uint64 `json:"room_id"`
	Version int64  `json:"version"`
	ID      string `json:"id"`
	PKID    string `json:"pk_id"`
	Seq     *int64 `json:"seq"`
}

var errNoType = errors.New("frame has no type")

// parseFrame reads a pushes record's value. seq is the record's offset: it
// is added as "seq" to danmaku and gift frames (the contract: producers
// leave it out, the push node adds it). seq < 0 reads a frame that already
// carries its seq (the Redis list of recent danmaku).
func parseFrame(value []byte, seq int64) (frame, error) {
	var h frameHead
	if err := json.Unmarshal(value, &h); err != nil {
		return frame{}, fmt.Errorf("cannot decode frame (%d bytes): %w", len(value), err)
	}
	f := frame{typ: h.Type, version: h.Version, id: h.ID, pkID: h.PKID}
	switch h.Type {
	case wire.TypeDanmaku:
		f.class = classDanmaku
	case wire.TypeGift:
		f.class = classGift
		if h.ID == "" {
			return frame{}, errors.New("gift frame has no id")
		}
	case wire.TypeLeaderboard, wire.TypePK, wire.TypeRoom, wire.TypeOnline:
		f.class = classState
		f.raw = value
		return f, nil
	case "":
		return frame{}, errNoType
	default:
		return frame{}, fmt.Errorf("unknown frame type %q", h.Type)
	}
	if seq < 0 { // a frame read back from Redis carries its seq
		if h.Seq == nil || *h.Seq < 0 {
			return frame{}, errors.New("stored frame has no seq")
		}
		f.seq, f.raw = *h.Seq, value
		return f, nil
	}
	f.seq = seq
	f.raw = withSeq(value, seq)
	return f, nil
}

// newer reports whether state frame f replaces cur: a higher version, or
// the frame of another PK.
func (f *frame) newer(cur frame) bool {
	return f.version > cur.version || (f.typ == wire.TypePK && f.pkID != cur.pkID)
}

// withSeq returns the JSON object v with "seq":seq added at its end.
func withSeq(v []byte, seq int64) []byte {
	v = bytes.TrimRight(v, " \t\r\n")
	out := make([]byte, 0, len(v)+24)
	out = append(out, v[:len(v)-1]...)
	out = bytes.TrimRight(out, " \t\r\n")
	if len(out) > 0 && out[len(out)-1] != '{' {
		out = append(out, ',')
	}
	out = append(out, `"seq":`...)
	out = strconv.AppendInt(out, seq, 10)
	return append(out, '}')
}

// appendBatch appends {"type":"batch","items":[...]} of the frames a
// connection at level l receives; ok is false when there is none.
func appendBatch(b []byte, frames []frame, l level) (_ []byte, ok bool) {
	b = append(b, `{"type":"batch","items":[`...)
	n := 0
	for _, f := range frames {
		if !l.receives(f.class) {
			continue
		}
		if n > 0 {
			b = append(b, ',')
		}
		b = append(b, f.raw...)
		n++
	}
	return append(b, "]}"...), n > 0
}

// clientFrame is what a client may send.
type clientFrame struct {
	Type string `json:"type"`
	ID   string `json:"id"`
}
