package api

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/golang-jwt/jwt/v5"

	"github.com/onair/onair/internal/authtoken"
	"github.com/onair/onair/internal/refusal"
)

// Token roles, as named in api.md. A token without a role is a plain user.
const (
	RoleAdmin   = authtoken.RoleAdmin   // may call /v1/admin/*
	RoleService = authtoken.RoleService // a trusted backend: may post events for any user
)

// Claims is what a verified token says about its bearer.
type Claims struct {
	// UserID is the token's sub: a positive decimal user id.
	UserID uint64
	// Role is "", RoleAdmin or RoleService.
	Role string
}

// SignToken returns an HS256 token for userID with role ("" for a plain
// user) that expires ttl from now. It is internal/authtoken's signer, the one
// every token of onair comes from; api keeps the name because `onair token`
// and the dev sign-in speak of the API's tokens.
func SignToken(secret []byte, userID uint64, role string, ttl time.Duration) (string, error) {
	return authtoken.Sign(secret, userID, role, ttl)
}

// ParseToken verifies token against secret and returns its claims. Only
// HS256 is accepted (alg "none" and every other algorithm are rejected), exp
// is required and checked, sub must be a positive decimal integer and role,
// when present, "admin" or "service".
func ParseToken(secret []byte, token string) (Claims, error) {
	c, _, err := parseToken(newKeyring(secret, nil), token, time.Now)
	return c, err
}

// keyring holds the secrets tokens are verified with: the one that signs
// (Config.AuthSecret) and those of a rotation in progress
// (Config.PreviousSecrets), by key id (authtoken.KeyID).
type keyring struct {
	byID map[string][]byte
	all  jwt.VerificationKeySet
}

func newKeyring(current []byte, previous [][]byte) *keyring {
	k := &keyring{byID: map[string][]byte{}}
	for _, s := range append([][]byte{current}, previous...) {
		if len(s) == 0 {
			continue
		}
		k.byID[authtoken.KeyID(s)] = s
		k.all.Keys = append(k.all.Keys, s)
	}
	return k
}

// key picks the secret a token names by its kid; a token without one
// (signed before key ids existed) is tried against each secret.
func (k *keyring) key(t *jwt.Token) (any, error) {
	kid, ok := t.Header["kid"].(string)
	if !ok {
		return k.all, nil
	}
	if s, ok := k.byID[kid]; ok {
		return s, nil
	}
	return nil, fmt.Errorf("token signed with a key this server does not hold (kid %q; rotated out?)", kid)
}

func parseToken(keys *keyring, token string, now func() time.Time) (Claims, time.Time, error) {
	var jc authtoken.Claims
	p := jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(now),
	)
	_, err := p.ParseWithClaims(token, &jc, keys.key)
	if err != nil {
		return Claims{}, time.Time{}, err
	}
	uid, err := strconv.ParseUint(jc.Subject, 10, 64)
	if err != nil || uid == 0 {
		return Claims{}, time.Time{}, fmt.Errorf("token sub %q is not a positive user id", jc.Subject)
	}
	if !authtoken.ValidRole(jc.Role) {
		return Claims{}, time.Time{}, fmt.Errorf("token role %q is unknown", jc.Role)
	}
	return Claims{UserID: uid, Role: jc.Role}, jc.ExpiresAt.Time, nil
}

// tokenCache remembers verified tokens, so the hot path pays one map lookup
// instead of an HMAC and a reflective JSON decode per request. Only tokens
// that passed verification enter it, keyed by the whole token string, and
// exp is checked on every hit, so it never accepts what ParseToken would
// refuse. It is sharded to keep the two cores from contending on one lock
// and bounded: a full shard drops an arbitrary entry (Go's map iteration
// order) per insert, which is cheap and good enough when tokens are
// long-lived and reused.
type tokenCache struct {
	shards [tokenShards]tokenShard
	per    int
}

const tokenShards = 16

type tokenShard struct {
	mu sync.RWMutex
	m  map[string]cachedToken
}

type cachedToken struct {
	claims Claims
	exp    int64 // unix nanoseconds
}

// newTokenCache returns a cache of about size tokens; nil (no cache) when
// size < 0.
func newTokenCache(size int) *tokenCache {
	if size < 0 {
		return nil
	}
	tc := &tokenCache{per: max(1, size/tokenShards)}
	for i := range tc.shards {
		tc.shards[i].m = make(map[string]cachedToken)
	}
	return tc
}

func (tc *tokenCache) shard(tok string) *tokenShard {
	// The signature is the token's tail and is uniformly random: hashing
	// its last bytes spreads tokens without hashing the whole string.
	h := uint32(2166136261)
	for i := max(0, len(tok)-8); i < len(tok); i++ {
		h = (h ^ uint32(tok[i])) * 16777619
	}
	return &tc.shards[h%tokenShards]
}

func (tc *tokenCache) get(tok string, now time.Time) (Claims, bool) {
	sh := tc.shard(tok)
	sh.mu.RLock()
	ct, ok := sh.m[tok]
	sh.mu.RUnlock()
	if !ok {
		return Claims{}, false
	}
	if now.UnixNano() >= ct.exp {
		sh.mu.Lock()
		delete(sh.m, tok)
		sh.mu.Unlock()
		return Claims{}, false
	}
	return ct.claims, true
}

func (tc *tokenCache) put(tok string, c Claims, exp time.Time) {
	sh := tc.shard(tok)
	sh.mu.Lock()
	if len(sh.m) >= tc.per {
		for k := range sh.m {
			delete(sh.m, k)
			break
		}
	}
	sh.m[strings.Clone(tok)] = cachedToken{claims: c, exp: exp.UnixNano()}
	sh.mu.Unlock()
}

// claimsKey is the gin context key of the bearer's Claims.
const claimsKey = "onair.api.claims"

// ClaimsFrom returns the claims of the request's verified token. It is set
// on every route of Server.V1 and Server.Admin.
func ClaimsFrom(c *gin.Context) (Claims, bool) {
	if v, ok := c.Get(claimsKey); ok {
		cl, ok := v.(Claims)
		return cl, ok
	}
	return Claims{}, false
}

// authenticate is the middleware of every /v1 route: it takes the token
// from "Authorization: Bearer", verifies it and stores its Claims. Only
// the WebSocket upgrade takes a credential in the URL
// (authenticateUpgrade): URLs end up in logs.
func (s *Server) authenticate(c *gin.Context) {
	tok, e := bearer(c)
	if e != nil {
		WriteError(c, e)
		return
	}
	s.authenticateToken(c, tok)
}

// authenticateToken verifies tok and stores its Claims, or refuses.
func (s *Server) authenticateToken(c *gin.Context, tok string) {
	cl, err := s.verify(tok)
	if err != nil {
		WriteError(c, &refusal.Error{Kind: refusal.Unauthenticated, Message: "invalid token: " + tokenErrMessage(err), Reason: "bad_token"})
		return
	}
	c.Set(claimsKey, cl)
	c.Next()
}

// verify returns the claims of tok, from the cache when it holds tok.
func (s *Server) verify(tok string) (Claims, error) {
	if s.tokens == nil {
		c, _, err := parseToken(s.keys, tok, s.now)
		return c, err
	}
	if cl, ok := s.tokens.get(tok, s.now()); ok {
		return cl, nil
	}
	cl, exp, err := parseToken(s.keys, tok, s.now)
	if err != nil {
		return Claims{}, err
	}
	s.tokens.put(tok, cl, exp)
	return cl, nil
}

func bearer(c *gin.Context) (string, *refusal.Error) {
	h := c.Request.Header.Get("Authorization")
	if h == "" {
		return "", &refusal.Error{Kind: refusal.Unauthenticated, Message: "missing bearer token", Reason: "no_token"}
	}
	const prefix = "bearer "
	if len(h) <= len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return "", &refusal.Error{Kind: refusal.Unauthenticated, Message: "authorization header must be \"Bearer <token>\"", Reason: "bad_token"}
	}
	tok := strings.TrimSpace(h[len(prefix):])
	if tok == "" {
		return "", &refusal.Error{Kind: refusal.Unauthenticated, Message: "empty bearer token", Reason: "bad_token"}
	}
	return tok, nil
}

// tokenErrMessage names why a token was refused without echoing jwt's
// wrapped chains.
func tokenErrMessage(err error) string {
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return "token expired"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return "exp claim required"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable):
		return "bad signature or algorithm (HS256 required)"
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "malformed token"
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return "token not valid yet"
	}
	return err.Error()
}

// requireRole is the middleware of a group only role may call.
func requireRole(role string) gin.HandlerFunc {
	return func(c *gin.Context) {
		cl, _ := ClaimsFrom(c)
		if cl.Role != role {
			WriteError(c, refusal.New(refusal.Forbidden, "", "requires role %s", role))
			return
		}
		c.Next()
	}
}
