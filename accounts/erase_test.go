package accounts

import (
	"context"
	"testing"

	"github.com/onair/onair/internal/refusal"
)

// TestEraseForgetsThePerson: after an erasure the account keeps its id and
// nothing of the person: no phone, nickname or avatar (also not in Redis
// or other nodes' names once their cache expires), no working session;
// the same phone signs up again as a new user. Erasing twice is fine.
// Break tried: an Erase that kept the phone made the new sign-in return
// the old user.
func TestEraseForgetsThePerson(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	s := e.signIn(t, "13800000042")
	nick := "Mia"
	if _, err := e.s.Update(ctx, s.UserID, ProfileUpdate{Nickname: &nick}, nil); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := e.s.Erase(ctx, s.UserID); err != nil {
			t.Fatal(err)
		}
	}
	p, err := e.s.Profile(ctx, s.UserID)
	if err != nil || p.Phone != "" || p.Nickname != ErasedNickname || p.AvatarURL != "" {
		t.Fatalf("the erased profile: %+v, %v", p, err)
	}
	if n, _ := e.s.cfg.Redis.Exists(ctx, ProfileKey(e.s.cfg.Prefix, s.UserID)).Result(); n != 0 {
		t.Fatal("the name's hot copy is still in Redis")
	}
	_, err = e.s.Refresh(ctx, s.RefreshToken)
	wantRefusal(t, err, refusal.Unauthenticated, "refresh_token")
	e.clk.add(DefaultCodeInterval)
	again := e.signIn(t, "13800000042")
	if !again.New || again.UserID == s.UserID {
		t.Fatalf("the phone signed in again as %+v; want a new user, not %d", again, s.UserID)
	}
	if err := e.s.Erase(ctx, 987654321); err != nil { // nobody: nothing to do
		t.Fatal(err)
	}
}
