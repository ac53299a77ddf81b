package api

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/onair/onair/internal/authtoken"
	"github.com/onair/onair/internal/refusal"
)

// signAt signs a token expiring at exp (SignToken counts from the real
// clock; test servers run on a pinned one).
func signAt(secret []byte, uid uint64, role string, exp time.Time) (string, error) {
	return jwt.NewWithClaims(jwt.SigningMethodHS256, authtoken.Claims{
		RegisteredClaims: jwt.RegisteredClaims{Subject: strconv.FormatUint(uid, 10), ExpiresAt: jwt.NewNumericDate(exp)},
		Role:             role,
	}).SignedString(secret)
}

func sign(t testing.TB, m jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(m, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestAuth(t *testing.T) {
	e := newEnv(t, nil)
	exp := testNow.Add(time.Hour).Unix()
	good := token(t, 42, "")
	const path = "/v1/history/settings"

	f := func(name string, set func(*http.Request), wantStatus int) {
		t.Helper()
		req, _ := http.NewRequest("GET", e.ts.URL+path, nil)
		set(req)
		resp, err := e.ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != wantStatus {
			t.Errorf("%s: status %d, want %d", name, resp.StatusCode, wantStatus)
		}
		if wantStatus == 401 && resp.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s: 401 without WWW-Authenticate", name)
		}
	}
	hdr := func(v string) func(*http.Request) {
		return func(r *http.Request) { r.Header.Set("Authorization", v) }
	}
	bearerOf := func(tok string) func(*http.Request) { return hdr("Bearer " + tok) }
	claims := func(kv ...any) jwt.MapClaims {
		m := jwt.MapClaims{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}

	f("valid", bearerOf(good), 200)
	f("lower-case scheme", hdr("bearer "+good), 200)
	// A credential in the URL is taken on the WebSocket upgrade only
	// (ticket_test.go): URLs end up in logs.
	f("query token", func(r *http.Request) { r.URL.RawQuery = "token=" + good }, 401)
	f("service role", bearerOf(token(t, 3, RoleService)), 200)
	f("admin role", bearerOf(token(t, 3, RoleAdmin)), 200)

	f("missing", func(*http.Request) {}, 401)
	f("empty bearer", hdr("Bearer "), 401)
	f("basic scheme", hdr("Basic dXNlcjpwYXNz"), 401)
	f("no scheme", hdr(good), 401)
	f("malformed", bearerOf("not.a.jwt"), 401)
	f("garbage", bearerOf("abc"), 401)
	f("bad query token", func(r *http.Request) { r.URL.RawQuery = "token=abc" }, 401)
	f("bad signature", bearerOf(sign(t, jwt.SigningMethodHS256, []byte("other-secret"), claims("sub", "42", "exp", exp))), 401)
	f("alg none", bearerOf(sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims("sub", "42", "exp", exp))), 401)
	f("alg HS512", bearerOf(sign(t, jwt.SigningMethodHS512, testSecret, claims("sub", "42", "exp", exp))), 401)
	f("alg HS384", bearerOf(sign(t, jwt.SigningMethodHS384, testSecret, claims("sub", "42", "exp", exp))), 401)
	f("expired", bearerOf(sign(t, jwt.SigningMethodHS256, testSecret, claims("sub", "42", "exp", testNow.Add(-time.Second).Unix()))), 401)
	f("no exp", bearerOf(sign(t, jwt.SigningMethodHS256, testSecret, claims("sub", "42"))), 401)
	f("no sub", bearerOf(sign(t, jwt.SigningMethodHS256, testSecret, claims("exp", exp))), 401)
	for _, sub := range []string{"0", "-1", "abc", "1.5", "", "+7", "18446744073709551616"} {
		f("sub "+sub, bearerOf(sign(t, jwt.SigningMethodHS256, testSecret, claims("sub", sub, "exp", exp))), 401)
	}
	f("numeric sub", bearerOf(sign(t, jwt.SigningMethodHS256, testSecret, claims("sub", 42, "exp", exp))), 401)
	f("unknown role", bearerOf(sign(t, jwt.SigningMethodHS256, testSecret, claims("sub", "42", "exp", exp, "role", "root"))), 401)
	f("not yet valid", bearerOf(sign(t, jwt.SigningMethodHS256, testSecret, claims("sub", "42", "exp", exp, "nbf", exp-1))), 401)

	r := e.get(path, "not.a.jwt")
	wantError(t, r, 401, refusal.CodeUnauthenticated, "")
	if !strings.Contains(r.body, "malformed") {
		t.Errorf("message does not say why: %s", r.body)
	}
}

// TestAuthCacheExpiry: a token cached while valid is refused once the
// clock passes its exp.
func TestAuthCacheExpiry(t *testing.T) {
	e := newEnv(t, nil)
	tok, err := signAt(testSecret, 9, "", testNow.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if r := e.get("/v1/history/settings", tok); r.status != 200 {
		t.Fatalf("fresh token: %d", r.status)
	}
	e.now.Add(int64(time.Minute / time.Millisecond))
	wantError(t, e.get("/v1/history/settings", tok), 401, refusal.CodeUnauthenticated, "")
}

func TestTokenCacheBounded(t *testing.T) {
	tc := newTokenCache(64)
	exp := time.Now().Add(time.Hour)
	for i := range 1000 {
		tc.put("tok"+strconv.Itoa(i)+"xyzabcdefgh", Claims{UserID: uint64(i + 1)}, exp)
	}
	n := 0
	for i := range tc.shards {
		n += len(tc.shards[i].m)
	}
	if n > 64 {
		t.Fatalf("cache holds %d tokens, bound 64", n)
	}
	tok := "tok999xyzabcdefgh"
	if c, ok := tc.get(tok, time.Now()); !ok || c.UserID != 1000 {
		t.Fatalf("last token not cached: %v %v", c, ok)
	}
	if _, ok := tc.get(tok, exp); ok {
		t.Fatal("expired token served from cache")
	}
}

func TestSignParseToken(t *testing.T) {
	tok, err := SignToken(testSecret, 42, RoleAdmin, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	c, err := ParseToken(testSecret, tok)
	if err != nil || c != (Claims{UserID: 42, Role: RoleAdmin}) {
		t.Fatalf("ParseToken = %+v, %v", c, err)
	}
	if _, err := ParseToken([]byte("other"), tok); err == nil {
		t.Fatal("token verified with another secret")
	}
	for _, bad := range []struct {
		uid  uint64
		role string
		ttl  time.Duration
	}{{0, "", time.Hour}, {1, "root", time.Hour}, {1, "", 0}} {
		if _, err := SignToken(testSecret, bad.uid, bad.role, bad.ttl); err == nil {
			t.Errorf("SignToken(%d, %q, %s) succeeded", bad.uid, bad.role, bad.ttl)
		}
	}
	if _, err := SignToken(nil, 1, "", time.Hour); err == nil {
		t.Error("SignToken with an empty secret succeeded")
	}
}

// BenchmarkAuth compares token verification with and without the cache.
func BenchmarkAuth(b *testing.B) {
	tok, err := SignToken(testSecret, 42, "", time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		size int
	}{{"cached", 0}, {"uncached", -1}} {
		b.Run(bc.name, func(b *testing.B) {
			s, err := New(Config{AuthSecret: testSecret, TokenCacheSize: bc.size})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := s.verify(tok); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

// TestSecretRotation: a new secret signs while the old one still
// verifies, each token by its kid, so a rotation invalidates nothing; once
// the old secret is dropped its tokens are refused, and a kid the server
// does not hold is refused whatever the signature. A token without a kid
// (signed before kids) is tried against every secret. Break tried:
// verifying only with AuthSecret refused the old secret's tokens.
func TestSecretRotation(t *testing.T) {
	old, next := []byte("old-secret-0123456789abcdef01234"), []byte("new-secret-0123456789abcdef01234")
	exp := testNow.Add(time.Hour).Unix()
	oldTok := sign(t, jwt.SigningMethodHS256, old, jwt.MapClaims{"sub": "42", "exp": exp})
	withKid := func(secret []byte, kid string) string {
		t.Helper()
		tk := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "42", "exp": exp})
		tk.Header["kid"] = kid
		s, err := tk.SignedString(secret)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	oldKid, newKid := withKid(old, authtoken.KeyID(old)), withKid(next, authtoken.KeyID(next))
	get := func(e *env, tok string) int { return e.get("/v1/history/settings", tok).status }

	during := newEnv(t, func(c *Config) { c.AuthSecret, c.PreviousSecrets = next, [][]byte{old} })
	for name, tok := range map[string]string{"old, no kid": oldTok, "old, its kid": oldKid, "new, its kid": newKid} {
		if s := get(during, tok); s != http.StatusOK {
			t.Errorf("during the rotation, %s: %d, want 200", name, s)
		}
	}
	if s := get(during, withKid(old, authtoken.KeyID(next))); s != http.StatusUnauthorized {
		t.Errorf("the old secret under the new kid: %d, want 401", s)
	}
	if s := get(during, withKid(next, "0123456789abcdef")); s != http.StatusUnauthorized {
		t.Errorf("an unknown kid: %d, want 401", s)
	}
	after := newEnv(t, func(c *Config) { c.AuthSecret = next })
	for name, tok := range map[string]string{"old, no kid": oldTok, "old, its kid": oldKid} {
		if s := get(after, tok); s != http.StatusUnauthorized {
			t.Errorf("after the rotation, %s: %d, want 401", name, s)
		}
	}
	if s := get(after, newKid); s != http.StatusOK {
		t.Errorf("after the rotation, the new secret's token: %d, want 200", s)
	}
}
