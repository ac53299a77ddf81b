package wallet

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/onair/onair/internal/pgdb"
	"github.com/onair/onair/internal/refusal"
)

// Gift is one catalog line.
type Gift struct {
	GiftID int64  `json:"gift_id"`
	Name   string `json:"name"`
	Price  int64  `json:"price"`
}

// Catalog bounds.
const (
	MaxCatalog  = 200
	maxGiftName = 32
)

// Catalog returns the gift catalog by gift_id.
func (w *Wallet) Catalog(ctx context.Context) ([]Gift, error) {
	gs, err := pgdb.Collect(ctx, w.db, pgx.RowToStructByPos[Gift], `SELECT gift_id, name, price FROM wallet_gifts ORDER BY gift_id`)
	if err != nil {
		return nil, w.fail("catalog", err)
	}
	if gs == nil {
		gs = []Gift{}
	}
	return gs, nil
}

// SetCatalog replaces the catalog (PUT /v1/admin/gifts) after checking
// every line: ids 1..2^63-1 and unique, names 1..32 characters and unique,
// prices 1..MaxPrice. Gifts already paid keep what they cost.
func (w *Wallet) SetCatalog(ctx context.Context, gs []Gift) ([]Gift, error) {
	if len(gs) > MaxCatalog {
		return nil, w.refuse("bad_catalog", refusal.Invalidf("items", "has %d gifts; at most %d", len(gs), MaxCatalog))
	}
	ids, names := map[int64]bool{}, map[string]bool{}
	for i, g := range gs {
		f := func(name string) string { return fmt.Sprintf("items[%d].%s", i, name) }
		switch n := utf8.RuneCountInString(g.Name); {
		case g.GiftID < 1:
			return nil, w.refuse("bad_catalog", refusal.Invalidf(f("gift_id"), "must be an integer in 1..%d", int64(1<<63-1)))
		case ids[g.GiftID]:
			return nil, w.refuse("bad_catalog", refusal.Invalidf(f("gift_id"), "%d appears twice", g.GiftID))
		case !utf8.ValidString(g.Name) || n < 1 || n > maxGiftName:
			return nil, w.refuse("bad_catalog", refusal.Invalidf(f("name"), "must be 1..%d characters of UTF-8", maxGiftName))
		case names[g.Name]:
			return nil, w.refuse("bad_catalog", refusal.Invalidf(f("name"), "%q appears twice", g.Name))
		case g.Price < 1 || g.Price > MaxPrice:
			return nil, w.refuse("bad_catalog", refusal.Invalidf(f("price"), "must be an integer in 1..%d", MaxPrice))
		}
		ids[g.GiftID], names[g.Name] = true, true
	}
	err := w.db.Tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM wallet_gifts`); err != nil {
			return err
		}
		for _, g := range gs {
			if _, err := tx.Exec(ctx, `INSERT INTO wallet_gifts (gift_id, name, price) VALUES ($1, $2, $3)`, g.GiftID, g.Name, g.Price); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, w.fail("set_catalog", err)
	}
	return w.Catalog(ctx)
}

// constraint names the constraint a statement failed on ("" if none).
func constraint(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.ConstraintName
	}
	return ""
}

// GiftInput is a paid gift as asked for.
type GiftInput struct {
	Sender, Room, Anchor uint64
	GiftID               uint64
	Count                int64
	EventID              string // "" = a fresh one (no retry safety)
}

// GiftResult is a paid gift: the transfer, the event id its event carries
// downstream ("wt<transfer id>"), what it cost, and the sender's balance.
type GiftResult struct {
	TransferID int64
	EventID    string
	Coins      int64
	Balance    int64
	TS         int64 // Unix ms of the transfer
	Replay     bool  // a retry of a gift already paid: nothing moved
}

// EventIDOf is the downstream event id of a gift's transfer: derived from
// the transfer, so the relay's every copy of it carries the same id.
func EventIDOf(transferID int64) string { return "wt" + strconv.FormatInt(transferID, 10) }

// maxEventID bounds a client's event_id, in bytes (as for POST /v1/events).
const maxEventID = 64

// PayGift charges a gift in one transaction: price × count from the sender,
// the anchor's share to its income, the rest to the platform, and the
// gift's outbox row. The idempotency key is the sender and event_id: a
// retry is charged once and answers the first transfer. A short wallet is
// an InsufficientFunds refusal naming count (nothing moved).
func (w *Wallet) PayGift(ctx context.Context, in GiftInput) (GiftResult, error) {
	switch {
	case in.GiftID == 0 || in.GiftID > 1<<63-1:
		return GiftResult{}, w.refuse("bad_gift", refusal.Invalidf("gift_id", "is required: an integer in 1..%d", int64(1<<63-1)))
	case in.Count < 1 || in.Count > MaxCount:
		return GiftResult{}, w.refuse("bad_count", refusal.Invalidf("count", "must be an integer in 1..%d", MaxCount))
	case len(in.EventID) > maxEventID:
		return GiftResult{}, w.refuse("bad_event_id", refusal.Invalidf("event_id", "has %d bytes; at most %d", len(in.EventID), maxEventID))
	}
	if in.EventID == "" {
		var b [12]byte
		_, _ = rand.Read(b[:])
		in.EventID = "srv-" + hex.EncodeToString(b[:])
	}
	idem := "gift:" + strconv.FormatUint(in.Sender, 10) + ":" + in.EventID
	var status string
	var r GiftResult
	var tid, bal, coins, ts *int64
	err := w.db.QueryRow(ctx, `SELECT status, tid, balance, coins, ts FROM wallet_gift($1, $2, $3, $4, $5, $6, $7, $8)`,
		idem, int64(in.Sender), int64(in.Room), int64(in.Anchor), int64(in.GiftID), in.Count, w.shard(in.Sender), w.cfg.SharePct).
		Scan(&status, &tid, &bal, &coins, &ts)
	switch {
	case constraint(err) == "wallet_never_negative":
		w.m.moves.WithLabelValues("gift", "insufficient_funds").Inc()
		return GiftResult{}, w.refuse("insufficient_funds", &refusal.Error{Kind: refusal.InsufficientFunds, Field: "count",
			Message: fmt.Sprintf("the wallet holds fewer coins than %d of gift %d cost", in.Count, in.GiftID)})
	case err != nil:
		return GiftResult{}, w.fail("gift", err)
	case status == "no_gift":
		return GiftResult{}, w.refuse("no_gift", refusal.Invalidf("gift_id", "no gift %d in the catalog", in.GiftID))
	}
	r = GiftResult{TransferID: *tid, EventID: EventIDOf(*tid), Coins: *coins, Balance: *bal, TS: *ts, Replay: status == "replay"}
	w.m.moves.WithLabelValues("gift", status).Inc()
	if !r.Replay {
		w.m.coins.WithLabelValues("gift").Add(float64(r.Coins))
	}
	return r, nil
}
