// Package ingest turns what apps report into Kafka records: it decodes and
// validates events, assigns event ids, encodes records and produces them with
// acknowledgement from every in-sync replica.
package ingest

import (
	"fmt"
	"slices"
	"time"
)

// Type is the kind of an event. Its numeric values are part of the record
// encoding and of ClickHouse's Enum8 columns: never renumber, only append.
type Type uint8

// Event types, as named in api.md.
const (
	TypeProgress Type = 1
	TypePlay     Type = 2
	TypeSkip     Type = 3
	TypeLike     Type = 4
	TypeGift     Type = 5
	TypeDanmaku  Type = 6
)

var typeNames = [...]string{"", "progress", "play", "skip", "like", "gift", "danmaku"}

// String returns the name used in the HTTP API and ClickHouse.
func (t Type) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

// ParseType returns the Type named s, or false.
func ParseType(s string) (Type, bool) {
	for i := 1; i < len(typeNames); i++ {
		if typeNames[i] == s {
			return Type(i), true
		}
	}
	return 0, false
}

// Biz is a business line. Zero means "none" (gift and danmaku events).
// The numeric values are part of the record encoding and ClickHouse enums.
type Biz uint8

// Business lines, as named in api.md.
const (
	BizNone    Biz = 0
	BizAudio   Biz = 1
	BizVideo   Biz = 2
	BizLive    Biz = 3
	BizArticle Biz = 4
	BizComic   Biz = 5
	BizRadio   Biz = 6
)

var bizNames = [...]string{"", "audio", "video", "live", "article", "comic", "radio"}

// Bizes lists every valid business line, in numeric order.
var Bizes = []Biz{BizAudio, BizVideo, BizLive, BizArticle, BizComic, BizRadio}

// BizNames returns the names of every valid business line, in numeric
// order: the one list the HTTP API (messages, OpenAPI document) and
// ClickHouse's Enum8 columns are checked against.
func BizNames() []string { return slices.Clone(bizNames[1:]) }

// String returns the name used in the HTTP API and ClickHouse.
func (b Biz) String() string {
	if int(b) < len(bizNames) {
		return bizNames[b]
	}
	return fmt.Sprintf("biz(%d)", uint8(b))
}

// ParseBiz returns the Biz named s, or false. The empty string is not valid.
func ParseBiz(s string) (Biz, bool) {
	for i := 1; i < len(bizNames); i++ {
		if bizNames[i] == s {
			return Biz(i), true
		}
	}
	return 0, false
}

// Event is one accepted event, as carried in a Kafka record of topic
// "events" (key = decimal UserID). Fields that do not apply to a Type are zero.
type Event struct {
	Type   Type
	UserID uint64
	Biz    Biz
	ItemID uint64
	// TS is the client's Unix time in milliseconds.
	TS         int64
	PositionMs uint64
	DurationMs uint64
	ListenedMs uint64
	StationID  uint64
	RoomID     uint64
	AnchorID   uint64
	GiftID     uint64
	Value      uint64
	// EventID is the client's id when it sent one, else a server-assigned one.
	// Client retries with the same EventID are counted once downstream.
	EventID string
	// ServerID reports that the server assigned EventID. Such ids are unique
	// by construction, so the aggregator skips the retry check for them.
	ServerID bool
	Device   string
	Text     string
}

// Placed is an event with its place in the events topic: what a consumer
// that fences by (partition, offset) needs (aggregate.Gift, rooms).
type Placed struct {
	Partition int32
	Offset    int64
	Appended  time.Time // Kafka append time
	Event     Event
}
