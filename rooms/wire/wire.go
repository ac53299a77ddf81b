// Package wire is the contract between the room owner (package rooms) and
// the WebSocket gateway (package push): the Redis keys of a room both of
// them touch, the frame types on the "pushes" topic, how many danmaku a
// room's recent list keeps, and the one rule for a room's head-count. Both
// import it and neither imports the other, so the two sides agree because
// they use the same definitions, not two copies of them. Keys and fields
// only one side uses stay in that side's package. docs/api.md "Live rooms:
// WebSocket" describes the same contract for clients.
package wire

import "strconv"

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
