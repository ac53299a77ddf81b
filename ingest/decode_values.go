package ingest

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The readers below turn one JSON value into one Event field. Each returns
// a validation message (the event is bad, decoding goes on) apart from a
// syntax error (the body is bad, decoding stops).

// knownField returns the canonical name of a field the decoder reads, or ""
// for one it skips. The names are constants, so errors cost no allocation
// until they are reported.
func knownField(key []byte) string {
	switch string(key) {
	case "type":
		return "type"
	case "user_id":
		return "user_id"
	case "biz":
		return "biz"
	case "item_id":
		return "item_id"
	case "ts":
		return "ts"
	case "position_ms":
		return "position_ms"
	case "duration_ms":
		return "duration_ms"
	case "listened_ms":
		return "listened_ms"
	case "station_id":
		return "station_id"
	case "room_id":
		return "room_id"
	case "anchor_id":
		return "anchor_id"
	case "gift_id":
		return "gift_id"
	case "value":
		return "value"
	case "event_id":
		return "event_id"
	case "device":
		return "device"
	case "text":
		return "text"
	}
	return ""
}

// setUint stores a numeric field and returns its presence bit.
func (d *decoder) setUint(r *Event, field string, v uint64) uint16 {
	switch field {
	case "user_id":
		r.UserID = v
		return hasUser
	case "item_id":
		r.ItemID = v
		return hasItem
	case "position_ms":
		r.PositionMs = v
		return hasPosition
	case "duration_ms":
		r.DurationMs = v
		return hasDuration
	case "listened_ms":
		r.ListenedMs = v
		return hasListened
	case "station_id":
		r.StationID = v // optional: no presence bit needed
	case "room_id":
		r.RoomID = v
		return hasRoom
	case "anchor_id":
		r.AnchorID = v
		return hasAnchor
	case "gift_id":
		r.GiftID = v
		return hasGift
	case "value":
		r.Value = v
		return hasValue
	}
	return 0
}

// uint reads a non-negative JSON integer ≤ MaxInt64 for field. Ids and gift
// value must also be positive. A non-empty msg is a validation failure; err
// is a syntax error.
func (d *decoder) uint(field string) (v uint64, msg string, err error) {
	s := &d.s
	positive := !strings.HasSuffix(field, "_ms")
	want := "must be a non-negative integer"
	if positive {
		want = "must be a positive integer"
	}
	c := s.peek()
	if c != '-' && (c < '0' || c > '9') {
		return 0, want + ", got " + kindOf(c), s.skip(1)
	}
	tok, isInt, err := s.number()
	if err != nil {
		return 0, "", err
	}
	if !isInt || tok[0] == '-' {
		return 0, want + ", got " + quote(tok), nil
	}
	for _, c := range tok {
		if v > (math.MaxInt64-uint64(c-'0'))/10 {
			return 0, fmt.Sprintf("%s, got %s (above %d)", want, quote(tok), int64(math.MaxInt64)), nil
		}
		v = v*10 + uint64(c-'0')
	}
	if positive && v == 0 {
		return 0, want + ", got 0", nil
	}
	return v, "", nil
}

// int reads a JSON integer that fits int64 (ts).
func (d *decoder) int() (v int64, msg string, err error) {
	s := &d.s
	const want = "must be an integer of Unix milliseconds"
	c := s.peek()
	if c != '-' && (c < '0' || c > '9') {
		return 0, want + ", got " + kindOf(c), s.skip(1)
	}
	tok, isInt, err := s.number()
	if err != nil {
		return 0, "", err
	}
	if !isInt {
		return 0, want + ", got " + quote(tok), nil
	}
	v, perr := strconv.ParseInt(string(tok), 10, 64) // no allocation: the conversion does not escape
	if perr != nil {
		return 0, want + ", got " + quote(tok) + " (out of range)", nil
	}
	return v, "", nil
}

// str reads a JSON string of valid UTF-8 of at most maxLen bytes (0 = no
// limit beyond the body's).
func (d *decoder) str(maxLen int) (v []byte, msg string, err error) {
	s := &d.s
	if c := s.peek(); c != '"' {
		return nil, "must be a string, got " + kindOf(c), s.skip(1)
	}
	v, err = s.str()
	if err != nil {
		return nil, "", err
	}
	if maxLen > 0 && len(v) > maxLen {
		return nil, fmt.Sprintf("must be at most %d bytes, got %d", maxLen, len(v)), nil
	}
	if !utf8.Valid(v) {
		return nil, "must be valid UTF-8", nil
	}
	return v, "", nil
}

func parseTypeBytes(b []byte) (Type, bool) {
	switch string(b) {
	case "progress":
		return TypeProgress, true
	case "play":
		return TypePlay, true
	case "skip":
		return TypeSkip, true
	case "like":
		return TypeLike, true
	case "gift":
		return TypeGift, true
	case "danmaku":
		return TypeDanmaku, true
	}
	return 0, false
}

func parseBizBytes(b []byte) (Biz, bool) {
	switch string(b) {
	case "audio":
		return BizAudio, true
	case "video":
		return BizVideo, true
	case "live":
		return BizLive, true
	case "article":
		return BizArticle, true
	case "comic":
		return BizComic, true
	case "radio":
		return BizRadio, true
	}
	return 0, false
}

// quote renders client input for an error message, cut to 32 bytes so that
// a hostile value cannot blow up the error response.
func quote(b []byte) string {
	if len(b) > 32 {
		return strconv.Quote(string(b[:32])) + "..."
	}
	return strconv.Quote(string(b))
}
