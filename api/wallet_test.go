package api

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/onair/onair/internal/pgdb/pgtest"
	"github.com/onair/onair/internal/refusal"
	"github.com/onair/onair/wallet"
)

func newWalletEnv(t *testing.T, provider wallet.PaymentProvider, secret string) *env {
	t.Helper()
	e := newEnv(t, nil)
	w, err := wallet.New(wallet.Config{DB: pgtest.DB(t), Provider: provider})
	if err != nil {
		t.Fatal(err)
	}
	if err := MountWallet(e.s, WalletRoutes{Wallet: w, CallbackSecret: []byte(secret)}); err != nil {
		t.Fatal(err)
	}
	return e
}

// TestRechargeRoute: the same order twice credits once and answers the
// same wallet; another amount is 409 naming coins; coins out of range is
// 400 naming coins. Break tried: dropping the (user, order) key from
// wallet_recharge (a transfer key per call) → the second POST answers
// 1200 and the test fails.
func TestRechargeRoute(t *testing.T) {
	t.Parallel()
	e := newWalletEnv(t, nil, "")
	u := token(t, 42, "")
	for range 2 {
		if r := e.post("/v1/wallet/recharge", u, `{"order_id":"o-1","coins":600}`); r.status != 200 || r.body != "{\"balance\":600,\"income\":0}\n" && r.body != `{"balance":600,"income":0}` {
			t.Fatalf("recharge: %d %s", r.status, r.body)
		}
	}
	wantError(t, e.post("/v1/wallet/recharge", u, `{"order_id":"o-1","coins":700}`), 409, refusal.CodeFailedPrecondition, "coins")
	wantError(t, e.post("/v1/wallet/recharge", u, `{"order_id":"o-2","coins":1000001}`), 400, refusal.CodeInvalidArgument, "coins")
	wantError(t, e.post("/v1/wallet/recharge", u, `{"order_id":"o-2","coins":0}`), 400, refusal.CodeInvalidArgument, "coins")
	wantError(t, e.post("/v1/wallet/recharge", u, `{"coins":5}`), 400, refusal.CodeInvalidArgument, "order_id")
	if r := e.get("/v1/wallet", u); r.status != 200 || !strings.Contains(r.body, `"balance":600`) {
		t.Fatalf("GET /v1/wallet: %d %s", r.status, r.body)
	}
	r := e.get("/v1/wallet/ledger?limit=5", u)
	if r.status != 200 || !strings.Contains(r.body, `"kind":"recharge","coins":600,"balance_after":600,"ref":"o-1"`) {
		t.Fatalf("ledger: %d %s", r.status, r.body)
	}
	wantError(t, e.get("/v1/wallet/ledger?cursor=x", u), 400, refusal.CodeInvalidArgument, "cursor")
}

// TestPaymentCallback: a webhook provider's recharge waits (202 pending)
// until a correctly signed callback credits it; a forged signature, a
// missing one or a changed body is 401 and credits nothing. Break tried:
// verifying the signature against the parsed order instead of the raw
// body (a re-encoded body) → the test's changed-amount body would pass.
func TestPaymentCallback(t *testing.T) {
	t.Parallel()
	secret := "cb-secret"
	e := newWalletEnv(t, wallet.WebhookProvider{}, secret)
	u := token(t, 43, "")
	if r := e.post("/v1/wallet/recharge", u, `{"order_id":"w-1","coins":300}`); r.status != 202 || !strings.Contains(r.body, `"pending":true`) {
		t.Fatalf("pending recharge: %d %s", r.status, r.body)
	}
	body := `{"user_id":43,"order_id":"w-1","coins":300}`
	call := func(body, sig string) (int, string) {
		req, _ := http.NewRequest("POST", e.ts.URL+"/v1/payments/callback", strings.NewReader(body))
		if sig != "" {
			req.Header.Set("X-Onair-Signature", sig)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, c := range []struct{ body, sig string }{
		{body, ""},
		{body, wallet.Sign([]byte("wrong"), []byte(body))},
		{strings.Replace(body, "300", "900000", 1), wallet.Sign([]byte(secret), []byte(body))},
		{body, "zz"},
	} {
		if st, b := call(c.body, c.sig); st != 401 || !strings.Contains(b, `"unauthenticated"`) {
			t.Fatalf("forged callback %q: %d %s", c.sig, st, b)
		}
	}
	if r := e.get("/v1/wallet", u); !strings.Contains(r.body, `"balance":0`) {
		t.Fatalf("credited by a forged callback: %s", r.body)
	}
	for range 2 {
		if st, b := call(body, wallet.Sign([]byte(secret), []byte(body))); st != 200 || !strings.Contains(b, `"balance":300`) {
			t.Fatalf("signed callback: %d %s", st, b)
		}
	}
}

// TestGiftCatalogRoutes: the seeded catalog, an admin replacing it, and
// the refusals naming items[i].field.
func TestGiftCatalogRoutes(t *testing.T) {
	t.Parallel()
	e := newWalletEnv(t, nil, "")
	u, admin := token(t, 42, ""), token(t, 1, RoleAdmin)
	if r := e.get("/v1/gifts", u); r.status != 200 || !strings.Contains(r.body, `{"gift_id":2,"name":"rocket","price":200}`) {
		t.Fatalf("GET /v1/gifts: %d %s", r.status, r.body)
	}
	put := func(tok, body string) reply { return e.do("PUT", "/v1/admin/gifts", tok, strings.NewReader(body)) }
	wantError(t, put(u, `{"items":[]}`), 403, refusal.CodePermissionDenied, "")
	wantError(t, put(admin, `{}`), 400, refusal.CodeInvalidArgument, "items")
	wantError(t, put(admin, `{"items":[{"gift_id":1,"name":"a","price":0}]}`), 400, refusal.CodeInvalidArgument, "items[0].price")
	wantError(t, put(admin, `{"items":[{"gift_id":1,"name":"a","price":1},{"gift_id":1,"name":"b","price":1}]}`), 400, refusal.CodeInvalidArgument, "items[1].gift_id")
	wantError(t, put(admin, `{"items":[{"gift_id":1,"name":"a","price":1},{"gift_id":2,"name":"a","price":1}]}`), 400, refusal.CodeInvalidArgument, "items[1].name")
	wantError(t, put(admin, `{"items":[{"gift_id":1,"name":"","price":1}]}`), 400, refusal.CodeInvalidArgument, "items[0].name")
	if r := put(admin, `{"items":[{"gift_id":7,"name":"star","price":5}]}`); r.status != 200 {
		t.Fatalf("PUT: %d %s", r.status, r.body)
	}
	if r := e.get("/v1/gifts", u); r.body != `{"items":[{"gift_id":7,"name":"star","price":5}]}` {
		t.Fatalf("after PUT: %s", r.body)
	}
}
