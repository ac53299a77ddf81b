// Package wire is the contract between the room owner (package rooms) and
// the WebSocket gateway (package push): the Redis keys of a room both of
// them touch, the frame types on the "pushes" topic, how many danmaku a
// room's recent list keeps, and the one rule for a room's head-count. Both
// import it and neither imports the other, so the two sides agree because
// they use the same definitions, not two copies of them. Keys and fields
// only one side uses stay in that side's package. docs/api.md "Live rooms:
// WebSocket" describes the same contract for clients.
package wire

import (
	"context"
	"strconv"
)

// Key names a room's Redis key: prefix + "{r<id>}:" + kind. Everything of
// a room shares the hash tag {r<id>}, so it lives in one cluster slot and
// a script may touch any of it.
func Key(prefix string, room uint64, kind string) string {
	return prefix + "{r" + strconv.FormatUint(room, 10) + "}:" + kind
}

// Key kinds of a room that both sides use.
const (
	// KindRoom is a hash (status, anchor_id, opened_at, ver, pk) written
	// by rooms; push only asks whether it exists (the room was opened).
	KindRoom = "room"
	// KindState is a hash from a state frame's type (TypeLeaderboard,
	// TypePK) to the latest such frame, written by rooms, read by push for
	// a first viewer's snapshot.
	KindState = "state"
	// KindRecent is a list of the last RecentDanmaku danmaku frames, each
	// with its seq, newest first; written by rooms, read by push.
	KindRecent = "recent"
	// KindViewers is a sorted set of the room's viewers across push
	// nodes: member = user id (decimal), score = when that viewer stops
	// counting (unix ms). Every push node adds its viewers each report
	// interval with an expiry of three intervals (ZADD GT) and removes
	// the expired members; a user with several connections, on one node or
	// several, is one member. Size: the room's distinct viewers of the last
	// expiry; the key expires with its newest member. HeadCount is its
	// ZCOUNT from HeadCountMin.
	KindViewers = "viewers"
)

// RecentDanmaku is how many danmaku frames KindRecent keeps. Push relies on
// it: a list this long may have lost older frames, so a snapshot built
// from it cannot prove it is complete.
const RecentDanmaku = 50

// Frame types rooms publish to "pushes" and push fans out (the gateway's
// own frames, batch, snapshot and pong, are push's).
const (
	TypeDanmaku     = "danmaku"
	TypeGift        = "gift"
	TypeLeaderboard = "leaderboard"
	TypePK          = "pk"
	TypeRoom        = "room"
	TypeOnline      = "online"
)

// HeadCountMin is the lower bound of the one head-count rule both sides
// use: a room's head-count at nowMs is ZCOUNT KindViewers HeadCountMin(nowMs)
// +inf, its distinct users whose expiry is at or after nowMs. A member
// left behind by a node that died stops counting when its expiry passes,
// whether or not anything has removed it yet.
func HeadCountMin(nowMs int64) string { return strconv.FormatInt(nowMs, 10) }

// Notifier delivers a frame to one user's WebSocket connections, on every
// push node (the personal channel: docs/api.md). frame is a JSON object
// with a "type" (TypePKInvite, TypeNotice...) and an "id" the client
// dedupes by. Delivery is at most once per connection: a user without a
// connection at that moment does not get it. *push.Notifier implements it
// (the pushes topic, key UserKey(user)).
type Notifier interface {
	Notify(ctx context.Context, userID uint64, frame any) error
}

// UserKey is the pushes-topic key of a user's personal frames: "u<id>"
// (room frames are keyed by the bare room id).
func UserKey(user uint64) string { return "u" + strconv.FormatUint(user, 10) }

// Personal frame types.
const (
	// TypePKInvite invites a room's anchor to a PK:
	// {"type": "pk_invite", "id": "pk_invite:<pk_id>", "pk_id", "room_a",
	// "room_b", "from_user_id", "from_nickname", "expires_at" (unix ms)}.
	TypePKInvite = "pk_invite"
	// TypeNotice tells a user something went wrong or happened to them
	// (a gift that failed to be paid, ...): {"type": "notice", "id",
	// "kind" ("gift_failed", ...), "message", optional "room_id", "ref"}.
	TypeNotice = "notice"
)

// PKInviteFrame is the pk_invite frame.
type PKInviteFrame struct {
	Type         string `json:"type"`
	ID           string `json:"id"`
	PKID         string `json:"pk_id"`
	RoomA        uint64 `json:"room_a"`
	RoomB        uint64 `json:"room_b"`
	FromUserID   uint64 `json:"from_user_id"`
	FromNickname string `json:"from_nickname,omitempty"`
	ExpiresAt    int64  `json:"expires_at"`
}

// NoticeFrame is the notice frame.
type NoticeFrame struct {
	Type    string `json:"type"`
	ID      string `json:"id"`
	Kind    string `json:"kind"`
	Message string `json:"message"`
	RoomID  uint64 `json:"room_id,omitempty"`
	Ref     string `json:"ref,omitempty"`
}
