package rooms

import (
	"context"
	"strconv"

	"github.com/onair/onair/internal/refusal"
	"github.com/onair/onair/rooms/wire"
)

// AnchorOf returns the anchor of an open room, for paid gifts (api's
// RoomAnchors until rooms live in PostgreSQL): a room never opened, or one
// without an anchor, is NotFound naming room_id; a closed one Conflict.
func (b *Board) AnchorOf(ctx context.Context, room uint64) (uint64, error) {
	anchor, err := b.openRoom(ctx, room)
	if err != nil {
		return 0, err
	}
	if anchor == 0 {
		return 0, b.reject("no_anchor", &refusal.Error{Kind: refusal.NotFound, Field: "room_id",
			Message: "room " + strconv.FormatUint(room, 10) + " has no anchor to receive gifts"})
	}
	return anchor, nil
}

// PublishGift publishes a paid gift's effect frame to its room. The gift is
// paid and its event is in the outbox whatever happens here: a failure is
// logged and counted by publish, and viewers miss the effect.
func (b *Board) PublishGift(ctx context.Context, f GiftFrame) {
	f.Type = wire.TypeGift
	_, _ = b.publish(ctx, f.RoomID, wire.TypeGift, f)
}
