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
	// KindOnline is a hash from a push node's id to its viewer count in the
	// room; written by push, summed by both with HeadCount.
	KindOnline = "online"
	// KindOnlineSeen is a hash from a push node's id to when its count in
	// KindOnline expires (unix ms); written with it, in the same script.
	KindOnlineSeen = "online:seen"
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

// HeadCount sums a room's viewers over push nodes: counts is KindOnline
// (node → viewers), seen is KindOnlineSeen (node → expiry, unix ms). A node
// counts only while its expiry is at or after nowMs, so a node that died
// stops counting when its last report expires.
//
// A node with a count but no expiry does not count. Push writes both
// fields of a node in one script, so a count without an expiry is no
// node's live report: it is what a partial loss left behind (the two are
// separate keys, and eviction may take one), and nothing says when it
// stops being true. Counting it could count a dead node's viewers for as
// long as other nodes keep the room's keys alive; leaving it out costs a
// live node at most one report interval, after which it has written both
// fields again.
func HeadCount(counts, seen map[string]string, nowMs int64) int64 {
	var n int64
	for node, c := range counts {
		exp, err := strconv.ParseInt(seen[node], 10, 64)
		if err != nil || exp < nowMs {
			continue
		}
		v, _ := strconv.ParseInt(c, 10, 64)
		n += v
	}
	return n
}

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
