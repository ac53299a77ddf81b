// Package authtoken signs onair's bearer tokens: HS256 JWTs whose sub is a
// positive decimal user id, with iat, a required exp and an optional role.
// api verifies them (api/auth.go); everything that needs one — `onair
// token`, the dev sign-in, tests, the load tester and `onair seed` — signs
// it here, so a token means the same wherever it was made.
//
// It imports nothing of onair's, so clients (loadtest, seed) sign without
// pulling in the API server.
package authtoken

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Roles, as named in docs/api.md ("Auth"). A token without a role is a
// plain user.
const (
	RoleAdmin   = "admin"   // may call /v1/admin/*
	RoleService = "service" // a trusted backend: may post events for any user
)

// Claims is the token body: sub, iat, exp and the optional role. api
// decodes into it, so a claim added here is one both sides agree on.
type Claims struct {
	jwt.RegisteredClaims
	Role string `json:"role,omitempty"`
}

// ValidRole reports whether r is a role api knows ("" is a plain user).
func ValidRole(r string) bool { return r == "" || r == RoleAdmin || r == RoleService }

// Sign returns an HS256 token for userID with role ("" for a plain user)
// that expires ttl from now. HS256 is the one algorithm api accepts.
func Sign(secret []byte, userID uint64, role string, ttl time.Duration) (string, error) {
	if len(secret) == 0 {
		return "", errors.New("authtoken: empty auth secret")
	}
	if userID == 0 {
		return "", errors.New("authtoken: user id must be positive")
	}
	if !ValidRole(role) {
		return "", fmt.Errorf("authtoken: unknown role %q (want %q, %q or none)", role, RoleAdmin, RoleService)
	}
	if ttl <= 0 {
		return "", fmt.Errorf("authtoken: ttl must be positive, got %s", ttl)
	}
	now := time.Now()
	c := Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   strconv.FormatUint(userID, 10),
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		},
		Role: role,
	}
	t := jwt.NewWithClaims(jwt.SigningMethodHS256, c)
	t.Header["kid"] = KeyID(secret)
	return t.SignedString(secret)
}

// KeyID names secret in a token's "kid" header: the first 8 bytes of its
// SHA-256, in hex. A verifier holding several secrets (a rotation: the new
// one signs, the old ones still verify) picks the one that signed the token
// by it; the id says nothing of the secret itself.
func KeyID(secret []byte) string {
	sum := sha256.Sum256(secret)
	return hex.EncodeToString(sum[:8])
}
