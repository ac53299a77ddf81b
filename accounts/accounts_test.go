package accounts

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/onair/onair/internal/refusal"
	"github.com/onair/onair/internal/testenv"
)

// wantRefusal fails unless err is a refusal of kind naming field.
func wantRefusal(t *testing.T, err error, kind refusal.Kind, field string) *refusal.Error {
	t.Helper()
	e, ok := refusal.As(err)
	if !ok || e.Kind != kind || e.Field != field {
		t.Fatalf("got %v (%+v), want a %s refusal naming %q", err, e, kind.Code(), field)
	}
	return e
}

func TestNormalizePhone(t *testing.T) {
	t.Parallel()
	f := func(in, want string) {
		t.Helper()
		got, e := NormalizePhone(in)
		if want == "" {
			if e == nil || e.Field != "phone" {
				t.Errorf("NormalizePhone(%q) = %q, %v; want a refusal naming phone", in, got, e)
			}
			return
		}
		if e != nil || got != want {
			t.Errorf("NormalizePhone(%q) = %q, %v; want %q", in, got, e, want)
		}
	}
	f("+8613800000000", "+8613800000000")
	f("13800000000", "+8613800000000")
	f(" 138-0000-0000 ", "+8613800000000")
	f("+14155550100", "+14155550100")
	f("+447911123456", "+447911123456")
	f("", "")
	f("1380000000", "")        // 10 digits, no +
	f("23800000000", "")       // 11 digits not starting with 1
	f("8613800000000", "")     // a country code needs its +
	f("+86123", "")            // +86 needs a mobile number
	f("+8603800000000", "")    // +86 mobile numbers start with 1
	f("+0123456789", "")       // E.164 never starts with 0
	f("+1234567890123456", "") // 16 digits
	f("+86138abc00000", "")
}

// The code is stored hashed: neither it nor the phone is anywhere in the
// table. It expires after 5 minutes.
func TestCodeStoredHashedAndExpires(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	code, err := e.s.SendCode(ctx, "13800000001")
	if err != nil {
		t.Fatal(err)
	}
	rows, err := e.db.Pool().Query(ctx, `SELECT phone_hash, code_hash, sent_at::text, expires_at::text, tries::text, used::text FROM sms_codes`)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for rows.Next() {
		n++
		var ph, ch []byte
		var a, b, c, d string
		if err := rows.Scan(&ph, &ch, &a, &b, &c, &d); err != nil {
			t.Fatal(err)
		}
		all := string(ph) + string(ch) + hex.EncodeToString(ph) + hex.EncodeToString(ch) + a + b + c + d
		for _, secret := range []string{code, "13800000001", "8613800000001"} {
			if strings.Contains(all, secret) {
				t.Fatalf("sms_codes holds %q in clear: %q", secret, all)
			}
		}
	}
	if rows.Err() != nil || n != 1 {
		t.Fatalf("%d rows, %v", n, rows.Err())
	}
	e.clk.add(DefaultCodeTTL + time.Second)
	_, err = e.s.Login(ctx, "13800000001", code)
	wantRefusal(t, err, refusal.Unauthenticated, "code")

	// a fresh code works, once
	e.clk.add(DefaultCodeInterval)
	code, err = e.s.SendCode(ctx, "+8613800000001")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.Login(ctx, "13800000001", code); err != nil {
		t.Fatal(err)
	}
	_, err = e.s.Login(ctx, "13800000001", code)
	wantRefusal(t, err, refusal.Unauthenticated, "code")
}

// Five wrong codes void the code (429), and then even the right one is
// refused.
func TestFiveWrongCodesVoid(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	code, err := e.s.SendCode(ctx, "13800000002")
	if err != nil {
		t.Fatal(err)
	}
	wrong := fmt.Sprintf("%06d", (mustAtoi(t, code)+1)%1_000_000)
	for i := 1; i <= 4; i++ {
		_, err := e.s.Login(ctx, "13800000002", wrong)
		wantRefusal(t, err, refusal.Unauthenticated, "code")
	}
	_, err = e.s.Login(ctx, "13800000002", wrong)
	wantRefusal(t, err, refusal.RateLimited, "code")
	_, err = e.s.Login(ctx, "13800000002", code)
	wantRefusal(t, err, refusal.RateLimited, "code")
}

func mustAtoi(t *testing.T, s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// One code per phone per minute: the second is 429 with a Retry-After of
// what is left of the minute; another phone is not held up.
func TestOneCodePerMinute(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	if _, err := e.s.SendCode(ctx, "13800000003"); err != nil {
		t.Fatal(err)
	}
	e.clk.add(20 * time.Second)
	_, err := e.s.SendCode(ctx, "+8613800000003")
	r := wantRefusal(t, err, refusal.RateLimited, "phone")
	if r.RetryAfterMs < 39_000 || r.RetryAfterMs > 40_000 {
		t.Fatalf("RetryAfterMs %d, want ~40 s", r.RetryAfterMs)
	}
	if _, err := e.s.SendCode(ctx, "13800000004"); err != nil {
		t.Fatalf("another phone: %v", err)
	}
	e.clk.add(40 * time.Second)
	if _, err := e.s.SendCode(ctx, "13800000003"); err != nil {
		t.Fatalf("after the minute: %v", err)
	}
}

// Refresh spends the old token and returns a new pair; the spent one is
// refused and, as a reuse, revokes the family (the new one too). Logout
// revokes a session.
func TestRefreshRotationAndLogout(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	first := e.signIn(t, "13800000005")
	if !first.New || first.RefreshToken == "" {
		t.Fatalf("first sign-in %+v", first)
	}
	second, err := e.s.Refresh(ctx, first.RefreshToken)
	if err != nil || second.UserID != first.UserID || second.RefreshToken == first.RefreshToken || second.Token == "" {
		t.Fatalf("refresh: %+v, %v", second, err)
	}
	third, err := e.s.Refresh(ctx, second.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.s.Refresh(ctx, first.RefreshToken) // spent: a reuse
	wantRefusal(t, err, refusal.Unauthenticated, "refresh_token")
	_, err = e.s.Refresh(ctx, third.RefreshToken) // its family is revoked
	wantRefusal(t, err, refusal.Unauthenticated, "refresh_token")
	_, err = e.s.Refresh(ctx, "no-such-token")
	wantRefusal(t, err, refusal.Unauthenticated, "refresh_token")

	e.clk.add(DefaultCodeInterval)
	s := e.signIn(t, "13800000005")
	if s.New || s.UserID != first.UserID {
		t.Fatalf("second sign-in %+v, want user %d not new", s, first.UserID)
	}
	other := e.signIn(t, "13800000006")
	if err := e.s.Logout(ctx, other.UserID, s.RefreshToken); err != nil { // not theirs: nothing happens
		t.Fatal(err)
	}
	s2, err := e.s.Refresh(ctx, s.RefreshToken)
	if err != nil {
		t.Fatalf("a stranger's logout revoked the session: %v", err)
	}
	if err := e.s.Logout(ctx, s.UserID, s2.RefreshToken); err != nil {
		t.Fatal(err)
	}
	_, err = e.s.Refresh(ctx, s2.RefreshToken)
	wantRefusal(t, err, refusal.Unauthenticated, "refresh_token")
}

// Two first sign-ins of one phone at once (two nodes) make one user:
// 20 phones, each signed up by 8 transactions at once.
func TestConcurrentFirstSignInsMakeOneUser(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	other := newEnv(t, func(c *Config) { c.DB = e.db }) // a second node
	ctx := context.Background()
	const n, phones = 8, 20
	for p := range phones {
		phone := fmt.Sprintf("+86138000001%02d", p)
		ids := make([]uint64, n)
		created := make([]bool, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			s := []*Service{e.s, other.s}[i%2]
			nid, err := s.ids.Next(ctx)
			if err != nil {
				t.Fatal(err)
			}
			wg.Go(func() {
				<-start
				err := s.db.Tx(ctx, func(tx pgx.Tx) (err error) {
					ids[i], created[i], err = s.userFor(ctx, tx, phone, nid)
					return err
				})
				if err != nil {
					t.Error(err)
				}
			})
		}
		close(start)
		wg.Wait()
		news := 0
		for i := range n {
			if ids[i] != ids[0] {
				t.Fatalf("%s: ids %v: one phone, several users", phone, ids)
			}
			if created[i] {
				news++
			}
		}
		var count int
		if err := e.db.QueryRow(ctx, `SELECT count(*) FROM users WHERE phone = $1`, phone).Scan(&count); err != nil || count != 1 || news != 1 {
			t.Fatalf("%s: %d users (%v), %d sign-ins said new; want 1 and 1", phone, count, err, news)
		}
	}
}

// Ids come from the sequence, never from the phone: the first user is
// 1000001 whatever their phone, the next one the next id.
func TestIDsNotFromPhone(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	a := e.signIn(t, "+14155550100")
	b := e.signIn(t, "13800000008")
	if a.UserID != DefaultUserIDStart || b.UserID != DefaultUserIDStart+1 {
		t.Fatalf("ids %d, %d; want %d and the next", a.UserID, b.UserID, DefaultUserIDStart)
	}
	for _, s := range []Session{a, b} {
		if strings.Contains(s.Token, "4155550100") || strings.Contains(s.Token, "13800000008") {
			t.Fatalf("a token carries a phone: %s", s.Token)
		}
	}
}

type words []string

func (w words) Blocked(_ context.Context, text string) string {
	for _, x := range w {
		if strings.Contains(strings.ToLower(text), x) {
			return x
		}
	}
	return ""
}

// Nicknames: 1..20 characters, no control character, no blocked word;
// avatars https only; each refusal names its field. A new user is
// listener-NNNN.
func TestProfileValidation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	s := e.signIn(t, "13800000009")
	p, err := e.s.Profile(ctx, s.UserID)
	if err != nil || len(p.Nickname) != len("listener-0000") || !strings.HasPrefix(p.Nickname, "listener-") || p.Phone != "+8613800000009" {
		t.Fatalf("new profile %+v, %v", p, err)
	}
	str := func(v string) *string { return &v }
	blocked := words{"badword"}
	for _, bad := range []string{"", "   ", strings.Repeat("x", 21), "a\x00b", "tab\there", "my BadWord"} {
		_, err := e.s.Update(ctx, s.UserID, ProfileUpdate{Nickname: str(bad)}, blocked)
		wantRefusal(t, err, refusal.Invalid, "nickname")
	}
	for _, bad := range []string{"http://x.example/a.png", "javascript:alert(1)", "https://", "https://" + strings.Repeat("a", 510), "https://x.example/a b"} {
		_, err := e.s.Update(ctx, s.UserID, ProfileUpdate{AvatarURL: str(bad)}, blocked)
		wantRefusal(t, err, refusal.Invalid, "avatar_url")
	}
	p, err = e.s.Update(ctx, s.UserID, ProfileUpdate{Nickname: str("  米娅 Mia 🎧  "), AvatarURL: str("https://cdn.example.com/mia.png")}, blocked)
	if err != nil || p.Nickname != "米娅 Mia 🎧" || p.AvatarURL != "https://cdn.example.com/mia.png" {
		t.Fatalf("update: %+v, %v", p, err)
	}
	p, err = e.s.Update(ctx, s.UserID, ProfileUpdate{Nickname: str(strings.Repeat("字", 20))}, blocked)
	if err != nil || p.AvatarURL != "https://cdn.example.com/mia.png" {
		t.Fatalf("20 characters, avatar kept: %+v, %v", p, err)
	}
	_, err = e.s.Update(ctx, 999, ProfileUpdate{Nickname: str("ghost")}, nil)
	if !errors.Is(err, ErrNoUser) {
		t.Fatalf("update of no one: %v", err)
	}
}

// A nickname change reaches another node's Names within 3 s; the hot copy
// in Redis expires; unknown users get a stand-in; the phone is in no log.
func TestNamesFollowChanges(t *testing.T) {
	t.Parallel()
	a := newEnv(t, nil)
	b := newEnv(t, func(c *Config) { c.DB, c.Redis, c.Prefix = a.db, a.s.cfg.Redis, a.s.cfg.Prefix })
	ctx := context.Background()
	s := a.signIn(t, "13800000010")
	old := b.s.Names().Nickname(ctx, s.UserID)
	if !strings.HasPrefix(old, "listener-") {
		t.Fatalf("nickname %q", old)
	}
	ttl, err := a.s.cfg.Redis.TTL(ctx, ProfileKey(a.s.cfg.Prefix, s.UserID)).Result()
	if err != nil || ttl <= 0 || ttl > profileTTL {
		t.Fatalf("hot copy TTL %s, %v; want (0, %s]", ttl, err, profileTTL)
	}
	nick := "Mia"
	if _, err := a.s.Update(ctx, s.UserID, ProfileUpdate{Nickname: &nick}, nil); err != nil {
		t.Fatal(err)
	}
	if got := a.s.Names().Nickname(ctx, s.UserID); got != nick {
		t.Fatalf("the changing node says %q", got)
	}
	testenv.Wait(t, 3*time.Second, func() bool { return b.s.Names().Nickname(ctx, s.UserID) == nick },
		"another node still says %q 3 s after the change", old)
	got := b.s.Names().Nicknames(ctx, []uint64{s.UserID, 424242})
	if got[s.UserID] != nick || got[424242] != "user 424242" {
		t.Fatalf("Nicknames: %v", got)
	}
	for _, log := range []string{a.log.String(), b.log.String()} {
		if strings.Contains(log, "13800000010") {
			t.Fatalf("a log names the phone:\n%s", log)
		}
	}
}
