package wallet

import (
	"context"
	"fmt"

	"github.com/onair/onair/internal/refusal"
)

// maxOrderID bounds a client's order id, in bytes.
const maxOrderID = 64

// RechargeResult is the reply to a recharge: the wallet, and whether the
// order is still waiting for the provider's callback.
type RechargeResult struct {
	Balance
	Pending bool `json:"pending,omitempty"`
}

// Recharge is POST /v1/wallet/recharge: it records the order, asks the
// provider for the money and, once it is paid, credits the wallet from
// payments exactly once (key: user and order id). A repeat returns the
// same result (the wallet as it is now); a repeat with another amount is a Conflict naming coins.
func (w *Wallet) Recharge(ctx context.Context, o Order) (RechargeResult, error) {
	if e := w.checkOrder(o); e != nil {
		return RechargeResult{}, e
	}
	paid, err := w.cfg.Provider.Charge(ctx, o)
	if err != nil {
		w.m.failures.WithLabelValues("provider").Inc()
		w.log.Warn("wallet: payment provider failed", "user", o.UserID, "order_id", o.OrderID, "err", err)
		return RechargeResult{}, refusal.UnavailableFor("payment_unavailable", "the payment provider did not answer; retry with the same order_id")
	}
	return w.credit(ctx, o, paid)
}

// Confirm is the provider's callback: the order is paid; credit it once.
// An order never asked for is credited as the callback says (the provider
// took the money).
func (w *Wallet) Confirm(ctx context.Context, o Order) (RechargeResult, error) {
	if e := w.checkOrder(o); e != nil {
		return RechargeResult{}, e
	}
	return w.credit(ctx, o, true)
}

func (w *Wallet) checkOrder(o Order) *refusal.Error {
	switch {
	case o.UserID == 0 || o.UserID > 1<<63-1:
		return w.refuse("bad_user", refusal.Invalidf("user_id", "must be an integer in 1..%d", int64(1<<63-1)))
	case o.OrderID == "" || len(o.OrderID) > maxOrderID:
		return w.refuse("bad_order", refusal.Invalidf("order_id", "is required: 1..%d bytes", maxOrderID))
	case o.Coins < 1 || o.Coins > MaxRecharge:
		return w.refuse("bad_coins", refusal.Invalidf("coins", "must be an integer in 1..%d", MaxRecharge))
	}
	return nil
}

func (w *Wallet) credit(ctx context.Context, o Order, paid bool) (RechargeResult, error) {
	var status string
	var balance, ordered int64
	err := w.db.QueryRow(ctx, `SELECT status, balance, ordered FROM wallet_recharge($1, $2, $3, $4)`,
		int64(o.UserID), o.OrderID, o.Coins, paid).Scan(&status, &balance, &ordered)
	if err != nil {
		return RechargeResult{}, w.fail("recharge", err)
	}
	w.m.moves.WithLabelValues("recharge", status).Inc()
	switch status {
	case "conflict":
		return RechargeResult{}, w.refuse("order_conflict", &refusal.Error{Kind: refusal.Conflict, Field: "coins",
			Message: fmt.Sprintf("order %q was for %d coins, not %d", o.OrderID, ordered, o.Coins)})
	case "ok":
		w.m.coins.WithLabelValues("recharge").Add(float64(o.Coins))
	}
	b, err := w.Balance(ctx, o.UserID)
	if err != nil {
		return RechargeResult{}, err
	}
	return RechargeResult{Balance: b, Pending: status == "pending"}, nil
}
