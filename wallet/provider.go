package wallet

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
)

// Order is a recharge a user asked for.
type Order struct {
	UserID  uint64
	OrderID string
	Coins   int64
}

// PaymentProvider takes the money for a recharge. Charge reports whether
// the payment is confirmed now; a provider that confirms later (a payment
// service's webhook) returns false, and the order is credited when
// POST /v1/payments/callback brings the signed confirmation (Confirm).
// Charge may be called again for the same order (a client retry): it must
// not take the money twice.
type PaymentProvider interface {
	Charge(ctx context.Context, o Order) (paid bool, err error)
}

// DevProvider is onair dev's provider: every payment succeeds at once.
type DevProvider struct{}

// Charge confirms every order.
func (DevProvider) Charge(context.Context, Order) (bool, error) { return true, nil }

// WebhookProvider is a payment service that confirms through the signed
// callback: Charge only records the order (a real integration would start
// the payment here).
type WebhookProvider struct{}

// Charge leaves the order pending until the callback.
func (WebhookProvider) Charge(context.Context, Order) (bool, error) { return false, nil }

var (
	_ PaymentProvider = DevProvider{}
	_ PaymentProvider = WebhookProvider{}
)

// Sign is the callback's signature of body: hex HMAC-SHA256 with secret.
func Sign(secret, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return hex.EncodeToString(mac.Sum(nil))
}

// VerifySignature reports whether sig (hex) is body's signature; constant
// time.
func VerifySignature(secret, body []byte, sig string) bool {
	want, err := hex.DecodeString(sig)
	if err != nil || len(secret) == 0 {
		return false
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return hmac.Equal(mac.Sum(nil), want)
}
