package seed

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/onair/onair/internal/apiclient"
)

// DemoUsers is how many people seed signs up (by SMS code, through the
// routes) to send the live-room traffic, so the page names them by
// nickname.
const DemoUsers = 5

// DemoNickname is the nickname seed gives its i-th demo user.
func DemoNickname(i int) string { return fmt.Sprintf("seed-listener-%d", i+1) }

// demoPhone is the i-th demo user's phone: +86 199 0000 00NN, the same on
// every run, so a second seed signs the same people in again.
func demoPhone(i int) string { return fmt.Sprintf("+86199000000%02d", i+1) }

// errNoDevCode: the target has no dev sign-in, so seed cannot read codes.
var errNoDevCode = errors.New("the sms-code reply has no dev_code (dev sign-in is off)")

// users signs up the demo users through POST /v1/auth/sms-code and
// /v1/auth/login (the dev code of the reply), names them with PATCH
// /v1/me and keeps their tokens for roomRoutes. Without dev sign-in, or
// within a minute of the last seed (one code per phone per minute), the
// step reports why and roomRoutes signs tokens of its own.
func (r *runner) users(ctx context.Context) Part {
	anon := apiclient.Client{Base: r.cfg.Target, HTTP: r.cfg.Client}
	r.viewers = nil
	p := r.step("demo users (sign-in by SMS code)", DemoUsers, func(i int) error {
		var code struct {
			DevCode string `json:"dev_code"`
		}
		if err := anon.Do(ctx, http.MethodPost, "/v1/auth/sms-code", map[string]string{"phone": demoPhone(i)}, &code); err != nil {
			return err
		}
		if code.DevCode == "" {
			return errNoDevCode
		}
		var sess struct {
			Token string `json:"token"`
		}
		if err := anon.Do(ctx, http.MethodPost, "/v1/auth/login", map[string]string{"phone": demoPhone(i), "code": code.DevCode}, &sess); err != nil {
			return err
		}
		me := anon.WithToken(sess.Token)
		if err := me.Do(ctx, http.MethodPatch, "/v1/me", map[string]string{"nickname": DemoNickname(i)}, nil); err != nil {
			return err
		}
		r.viewers = append(r.viewers, me)
		return nil
	})
	if p.Failed {
		r.viewers = nil
		var refused *apiclient.StatusError
		if err := r.lastErr; errors.Is(err, errNoDevCode) || errors.As(err, &refused) &&
			(refused.Status == http.StatusTooManyRequests || refused.Status == http.StatusServiceUnavailable) {
			// not a failure of onair (no dev sign-in, or no SMS gateway
			// configured): seed signs its own tokens instead
			p.Failed = false
			p.Status = "skipped (" + err.Error() + "); room traffic uses signed tokens"
		}
	}
	return p
}
