package accounts

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/onair/onair/internal/refusal"
)

// fakeGateway is a local SMS gateway: it answers the statuses in fail
// first, then 200, and keeps the codes it took.
type fakeGateway struct {
	mu    sync.Mutex
	fail  []int
	codes map[string]string // phone → last code
	calls int
}

func (g *fakeGateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.calls++
	if len(g.fail) > 0 {
		w.WriteHeader(g.fail[0])
		g.fail = g.fail[1:]
		return
	}
	var b struct{ Phone, Code string }
	if err := json.NewDecoder(r.Body).Decode(&b); err != nil {
		w.WriteHeader(400)
		return
	}
	g.codes[b.Phone] = b.Code
}

// The webhook gets the code (a 503 first is retried); no dev code is
// answered; a gateway that refuses (400) is a 503 and the phone may ask
// again at once; without gateway and dev codes, sign-in is refused.
func TestWebhookSMS(t *testing.T) {
	t.Parallel()
	gw := &fakeGateway{fail: []int{503}, codes: map[string]string{}}
	srv := httptest.NewServer(gw)
	defer srv.Close()
	e := newEnv(t, func(c *Config) { c.DevCodes = false; c.SMS = &WebhookSMS{URL: srv.URL} })
	ctx := context.Background()
	dev, err := e.s.SendCode(ctx, "13800000011")
	if err != nil || dev != "" {
		t.Fatalf("SendCode = %q, %v; want no dev code", dev, err)
	}
	gw.mu.Lock()
	code, calls := gw.codes["+8613800000011"], gw.calls
	gw.fail = []int{400}
	gw.mu.Unlock()
	if len(code) != 6 || calls != 2 {
		t.Fatalf("gateway got %q after %d calls; want a code after a retry", code, calls)
	}
	if _, err := e.s.Login(ctx, "13800000011", code); err != nil {
		t.Fatal(err)
	}
	_, err = e.s.SendCode(ctx, "13800000012")
	wantRefusal(t, err, refusal.Unavailable, "")
	if _, err := e.s.SendCode(ctx, "13800000012"); err != nil {
		t.Fatalf("after a failed send the phone may ask again at once: %v", err)
	}

	off := newEnv(t, func(c *Config) { c.DevCodes = false })
	_, err = off.s.SendCode(ctx, "13800000013")
	if e, ok := refusal.As(err); !ok || e.Kind != refusal.Unavailable || e.Reason != "no_sms_gateway" {
		t.Fatalf("without a gateway: %v", err)
	}
}
