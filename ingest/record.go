package ingest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
)

// RecordVersion is the first byte of every record value AppendRecord writes.
const RecordVersion = 1

// Record value layout, version 1 (the Kafka record key is RecordKey):
//
//	offset  size     field
//	0       1        version = 1
//	1       1        Type (event.go's numbering)
//	2       1        Biz (0 = none)
//	3       2        presence bitmap, little-endian; bit i set = field i follows
//	5       ...      for each set bit 0..10 in order, the numeric field:
//	                   0 UserID      uvarint
//	                   1 ItemID      uvarint
//	                   2 TS          varint (zigzag: any int64)
//	                   3 PositionMs  uvarint
//	                   4 DurationMs  uvarint
//	                   5 ListenedMs  uvarint
//	                   6 StationID   uvarint
//	                   7 RoomID      uvarint
//	                   8 AnchorID    uvarint
//	                   9 GiftID      uvarint
//	                   10 Value      uvarint
//	        ...      then for each set bit 11..13, uvarint length + bytes:
//	                   11 EventID, 12 Device, 13 Text
//	                 bit 14 is ServerID, a flag with no bytes of its own;
//	                 bit 15 is reserved and must be 0.
//
// A field is present exactly when it is not zero, so decoding gives back the
// Event that was encoded. Nothing may follow the last field. Any change of
// layout, including a new field, takes a new version byte; DecodeRecord
// rejects versions it does not know, so deploy consumers before producers.
// Type and Biz values are not checked: a consumer meets types newer than
// itself and must skip (and count) them, not fail.
//
// A typical progress event is about 20 bytes plus its strings, against
// ~150 bytes of JSON.
const (
	recordHeader = 5

	bitEventID  = 11
	bitDevice   = 12
	bitText     = 13
	bitServerID = 14
	bitsKnown   = 1<<15 - 1
)

// AppendRecord appends the encoding of e to dst and returns the result.
func AppendRecord(dst []byte, e *Event) []byte {
	nums := [...]uint64{e.UserID, e.ItemID, zigzag(e.TS), e.PositionMs, e.DurationMs,
		e.ListenedMs, e.StationID, e.RoomID, e.AnchorID, e.GiftID, e.Value}
	var bm uint16
	for i, v := range nums {
		if v != 0 {
			bm |= 1 << i
		}
	}
	if e.EventID != "" {
		bm |= 1 << bitEventID
	}
	if e.Device != "" {
		bm |= 1 << bitDevice
	}
	if e.Text != "" {
		bm |= 1 << bitText
	}
	if e.ServerID {
		bm |= 1 << bitServerID
	}
	dst = append(dst, RecordVersion, byte(e.Type), byte(e.Biz), byte(bm), byte(bm>>8))
	for _, v := range nums {
		if v != 0 {
			dst = binary.AppendUvarint(dst, v)
		}
	}
	for _, s := range [...]string{e.EventID, e.Device, e.Text} {
		if s != "" {
			dst = binary.AppendUvarint(dst, uint64(len(s)))
			dst = append(dst, s...)
		}
	}
	return dst
}

// ErrRecordVersion is matched (errors.Is) by DecodeRecord's error for a
// record written by an encoding this code does not know.
var ErrRecordVersion = errors.New("unknown record version")

// DecodeRecord decodes a record value written by AppendRecord into e,
// overwriting all of e. On error e is left zero.
func DecodeRecord(b []byte, e *Event) error {
	*e = Event{}
	if len(b) < recordHeader {
		if len(b) > 0 && b[0] != RecordVersion {
			return fmt.Errorf("%w %d (%d bytes)", ErrRecordVersion, b[0], len(b))
		}
		return fmt.Errorf("truncated record: %d bytes, header needs %d", len(b), recordHeader)
	}
	if b[0] != RecordVersion {
		return fmt.Errorf("%w %d (%d bytes); this build reads version %d", ErrRecordVersion, b[0], len(b), RecordVersion)
	}
	bm := uint16(b[3]) | uint16(b[4])<<8
	if bm&^bitsKnown != 0 {
		return fmt.Errorf("record version 1 has reserved presence bits set: %#04x", bm)
	}
	var ev Event
	ev.Type, ev.Biz = Type(b[1]), Biz(b[2])
	ev.ServerID = bm&(1<<bitServerID) != 0
	nums := [...]*uint64{&ev.UserID, &ev.ItemID, nil, &ev.PositionMs, &ev.DurationMs,
		&ev.ListenedMs, &ev.StationID, &ev.RoomID, &ev.AnchorID, &ev.GiftID, &ev.Value}
	off := recordHeader
	for i, p := range nums {
		if bm&(1<<i) == 0 {
			continue
		}
		v, n := binary.Uvarint(b[off:])
		if n <= 0 || v == 0 {
			return fmt.Errorf("cannot decode field %d at offset %d of a %d-byte record: %s", i, off, len(b), varintProblem(n))
		}
		off += n
		if p == nil {
			ev.TS = unzigzag(v)
		} else {
			*p = v
		}
	}
	// The strings are converted with one allocation: one string spanning
	// all of them (and their length prefixes), sliced three ways.
	if bm>>bitEventID&(1<<3-1) == 0 {
		if off != len(b) {
			return fmt.Errorf("record has %d trailing bytes after offset %d", len(b)-off, off)
		}
		*e = ev
		return nil
	}
	all := string(b[off:])
	base := off
	for i, p := range [...]*string{&ev.EventID, &ev.Device, &ev.Text} {
		if bm&(1<<(bitEventID+i)) == 0 {
			continue
		}
		l, n := binary.Uvarint(b[off:])
		if n <= 0 || l == 0 {
			return fmt.Errorf("cannot decode length of string %d at offset %d of a %d-byte record: %s", bitEventID+i, off, len(b), varintProblem(n))
		}
		off += n
		if l > uint64(len(b)-off) {
			return fmt.Errorf("truncated record: string %d needs %d bytes at offset %d, record has %d", bitEventID+i, l, off, len(b))
		}
		*p = all[off-base : off-base+int(l)]
		off += int(l)
	}
	if off != len(b) {
		return fmt.Errorf("record has %d trailing bytes after offset %d", len(b)-off, off)
	}
	*e = ev
	return nil
}

func varintProblem(n int) string {
	switch {
	case n == 0:
		return "truncated"
	case n < 0:
		return "varint overflows 64 bits"
	}
	return "zero value marked present" // AppendRecord never writes one
}

// RecordKey is the Kafka key of a user's events: the decimal user id. Keys
// route each user to one partition, so one aggregator owns a user at a time.
func RecordKey(userID uint64) []byte {
	return AppendRecordKey(make([]byte, 0, 20), userID)
}

// AppendRecordKey appends RecordKey(userID) to dst, for callers that pool.
func AppendRecordKey(dst []byte, userID uint64) []byte {
	return strconv.AppendUint(dst, userID, 10)
}

func zigzag(v int64) uint64 { return uint64(v<<1) ^ uint64(v>>63) }

func unzigzag(u uint64) int64 { return int64(u>>1) ^ -int64(u&1) }
