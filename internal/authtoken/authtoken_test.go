package authtoken

import (
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// TestSign: a signed token carries sub, role, iat and exp under HS256, and
// a token api would refuse is not signed.
func TestSign(t *testing.T) {
	secret := []byte("s3cret")
	tok, err := Sign(secret, 42, RoleAdmin, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	var c Claims
	_, err = jwt.NewParser(jwt.WithValidMethods([]string{"HS256"}), jwt.WithExpirationRequired(), jwt.WithIssuedAt()).
		ParseWithClaims(tok, &c, func(*jwt.Token) (any, error) { return secret, nil })
	if err != nil {
		t.Fatal(err)
	}
	if c.Subject != "42" || c.Role != RoleAdmin || c.IssuedAt == nil || c.ExpiresAt.Sub(c.IssuedAt.Time) != time.Hour {
		t.Errorf("claims %+v", c)
	}
	f := func(secret []byte, uid uint64, role string, ttl time.Duration) {
		t.Helper()
		if _, err := Sign(secret, uid, role, ttl); err == nil {
			t.Errorf("Sign(%q, %d, %q, %s) succeeded", secret, uid, role, ttl)
		}
	}
	f(nil, 1, "", time.Hour)
	f(secret, 0, "", time.Hour)
	f(secret, 1, "root", time.Hour)
	f(secret, 1, "", 0)
}
