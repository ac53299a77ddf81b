package api

import (
	"context"
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/onair/onair/internal/refusal"
	"github.com/onair/onair/rooms"
	"github.com/onair/onair/wallet"
)

// RoomAnchors says who receives a room's gifts. AnchorOf returns the
// anchor of an open room; a room that does not exist or has no anchor is a
// NotFound refusal naming room_id (404), a closed one a Conflict (409);
// anything else is a failure (503). cmd/onair implements it from the rooms
// registry in Redis (rooms.Board) until rooms live in PostgreSQL.
type RoomAnchors interface {
	AnchorOf(ctx context.Context, roomID uint64) (anchorID uint64, err error)
}

// GiftEffects shows a paid gift's effect in its room (rooms.Board).
type GiftEffects interface {
	PublishGift(ctx context.Context, f rooms.GiftFrame)
}

// WalletRoutes is what MountWallet serves.
type WalletRoutes struct {
	// Wallet is the ledger. Required.
	Wallet *wallet.Wallet
	// Anchors maps rooms to anchors for paid gifts. nil = the gift route
	// is not mounted.
	Anchors RoomAnchors
	// Effects publishes gift frames; nil = none.
	Effects GiftEffects
	// CallbackSecret verifies POST /v1/payments/callback; empty = the
	// callback is not mounted (onair dev's provider needs none).
	CallbackSecret []byte
}

// MountWallet adds api.md's "Wallet, priced gifts" routes: the wallet,
// its ledger, recharges and the payment callback, the gift catalog and
// paid gifts.
func MountWallet(s *Server, r WalletRoutes) error {
	if r.Wallet == nil {
		return errors.New("api: WalletRoutes.Wallet is required")
	}
	h := &walletHandlers{s: s, r: r, w: r.Wallet}
	v1 := s.V1()
	v1.GET("/wallet", h.balance)
	v1.GET("/wallet/ledger", h.ledger)
	v1.POST("/wallet/recharge", h.recharge)
	v1.GET("/gifts", h.catalog)
	s.Admin().PUT("/gifts", h.setCatalog)
	if r.Anchors != nil {
		v1.POST("/rooms/:id/gifts", h.gift)
	}
	if len(r.CallbackSecret) > 0 {
		// Outside the /v1 group: the provider signs the body, it has no token.
		s.Router().POST("/v1/payments/callback", h.callback)
	}
	return nil
}

type walletHandlers struct {
	s *Server
	r WalletRoutes
	w *wallet.Wallet
}

// gift is POST /v1/rooms/{id}/gifts: pay price × count, then (the event is
// in the outbox, relayed to rankings and PK) show the effect in the room.
func (h *walletHandlers) gift(c *gin.Context) {
	room, e := pathID(c, "id")
	if e != nil {
		WriteError(c, e)
		return
	}
	var in struct {
		GiftID  uint64 `json:"gift_id"`
		Count   *int64 `json:"count"`
		EventID string `json:"event_id"`
	}
	if e := decodeJSON(c, &in, roomBody); e != nil {
		WriteError(c, e)
		return
	}
	count := int64(1) // absent count: one gift
	if in.Count != nil {
		count = *in.Count
	}
	if in.GiftID == 0 {
		WriteError(c, refusal.Invalidf("gift_id", "is required: an integer in 1..%d", int64(1<<63-1)))
		return
	}
	anchor, err := h.r.Anchors.AnchorOf(c.Request.Context(), room)
	if err != nil {
		WriteError(c, h.fail(c, err))
		return
	}
	who := callerOf(c)
	res, err := h.w.PayGift(c.Request.Context(), wallet.GiftInput{Sender: who.UserID, Room: room, Anchor: anchor,
		GiftID: in.GiftID, Count: count, EventID: in.EventID})
	if err != nil {
		WriteError(c, h.fail(c, err))
		return
	}
	if h.r.Effects != nil && !res.Replay {
		h.r.Effects.PublishGift(c.Request.Context(), rooms.GiftFrame{RoomID: room, ID: res.EventID, UserID: who.UserID,
			GiftID: in.GiftID, Value: uint64(res.Coins), AnchorID: anchor, TS: res.TS})
	}
	c.JSON(http.StatusAccepted, gin.H{"accepted": true, "id": res.EventID, "balance": res.Balance, "coins": res.Coins})
}

func (h *walletHandlers) catalog(c *gin.Context) {
	gs, err := h.w.Catalog(c.Request.Context())
	if err != nil {
		WriteError(c, h.fail(c, err))
		return
	}
	c.JSON(http.StatusOK, gin.H{"items": gs})
}

func (h *walletHandlers) setCatalog(c *gin.Context) {
	var in struct {
		Items *[]wallet.Gift `json:"items"`
	}
	if e := decodeJSON(c, &in, roomBody); e != nil {
		WriteError(c, e)
		return
	}
	if in.Items == nil { // a missing list must not clear the catalog
		WriteError(c, refusal.Invalidf("items", "is required: the whole catalog"))
		return
	}
	gs, err := h.w.SetCatalog(c.Request.Context(), *in.Items)
	if err != nil {
		WriteError(c, h.fail(c, err))
		return
	}
	c.JSON(http.StatusOK, gin.H{"items": gs})
}

// fail maps the wallet's and the anchors' errors to API errors; anything
// unexpected is logged and is a 500.
func (h *walletHandlers) fail(c *gin.Context, err error) *refusal.Error {
	switch be, refused := refusal.As(err); {
	case refused:
		e := *be
		if e.Reason == "" {
			e.Reason = "wallet"
		}
		return &e
	case errors.Is(err, wallet.ErrUnavailable):
		return refusal.UnavailableFor("wallet_unavailable", "the ledger did not answer; retry with the same event_id or order_id")
	case errors.Is(err, rooms.ErrUnavailable):
		return refusal.UnavailableFor("rooms_unavailable", "the room registry did not answer; retry with the same event_id")
	}
	h.s.log.Error("wallet: unexpected error", "route", c.FullPath(), "err", err)
	return refusal.InternalFor("wallet_failed")
}
