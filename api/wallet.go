package api

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/onair/onair/internal/refusal"
	"github.com/onair/onair/wallet"
)

func (h *walletHandlers) balance(c *gin.Context) {
	b, err := h.w.Balance(c.Request.Context(), callerOf(c).UserID)
	if err != nil {
		WriteError(c, h.fail(c, err))
		return
	}
	c.JSON(http.StatusOK, b)
}

// ledger is GET /v1/wallet/ledger?limit=20&cursor=: newest first; cursor
// is next_cursor of the previous page.
func (h *walletHandlers) ledger(c *gin.Context) {
	q := c.Request.URL.Query()
	limit, e := queryInt(q, "limit", 20, 1, 100)
	if e != nil {
		WriteError(c, e)
		return
	}
	var before int64
	if v := q.Get("cursor"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			WriteError(c, refusal.Invalidf("cursor", "must be the next_cursor of a previous page"))
			return
		}
		before = n
	}
	es, next, err := h.w.Ledger(c.Request.Context(), callerOf(c).UserID, limit, before)
	if err != nil {
		WriteError(c, h.fail(c, err))
		return
	}
	c.JSON(http.StatusOK, gin.H{"items": es, "next_cursor": next})
}

type rechargeBody struct {
	OrderID string `json:"order_id"`
	Coins   int64  `json:"coins"`
}

// recharge is POST /v1/wallet/recharge: 200 the wallet after the credit
// (202 with "pending": true when the provider confirms later).
func (h *walletHandlers) recharge(c *gin.Context) {
	var in rechargeBody
	if e := decodeJSON(c, &in, roomBody); e != nil {
		WriteError(c, e)
		return
	}
	r, err := h.w.Recharge(c.Request.Context(), wallet.Order{UserID: callerOf(c).UserID, OrderID: in.OrderID, Coins: in.Coins})
	if err != nil {
		WriteError(c, h.fail(c, err))
		return
	}
	status := http.StatusOK
	if r.Pending {
		status = http.StatusAccepted
	}
	c.JSON(status, r)
}

// callbackHeader carries the hex HMAC-SHA256 of the callback's body.
const callbackHeader = "X-Onair-Signature"

// callback is POST /v1/payments/callback, the provider's confirmation:
// body {"user_id", "order_id", "coins"}, signed; a forged one is 401.
func (h *walletHandlers) callback(c *gin.Context) {
	body, e := readBody(c, 64<<10)
	if e != nil {
		WriteError(c, e)
		return
	}
	defer putBody(body)
	if !wallet.VerifySignature(h.r.CallbackSecret, *body, c.GetHeader(callbackHeader)) {
		h.s.log.Warn("wallet: payment callback with a bad signature", "bytes", len(*body))
		WriteError(c, &refusal.Error{Kind: refusal.Unauthenticated, Field: callbackHeader, Reason: "bad_signature",
			Message: "the body's signature does not match"})
		return
	}
	var in struct {
		UserID uint64 `json:"user_id"`
		rechargeBody
	}
	if err := json.Unmarshal(*body, &in); err != nil {
		WriteError(c, refusal.Invalidf("", "invalid JSON: %v", err))
		return
	}
	r, err := h.w.Confirm(c.Request.Context(), wallet.Order{UserID: in.UserID, OrderID: in.OrderID, Coins: in.Coins})
	if err != nil {
		WriteError(c, h.fail(c, err))
		return
	}
	c.JSON(http.StatusOK, r)
}
