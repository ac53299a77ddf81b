package accounts

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/onair/onair/internal/authtoken"
	"github.com/onair/onair/internal/refusal"
)

// Sessions: an access token (JWT HS256, sub = user id, no phone, AccessTTL)
// and a refresh token: 32 random bytes, base64url, stored as their sha256
// (the token has 256 bits of entropy: a plain hash cannot be reversed by
// trying tokens). Each sign-in starts a family; a refresh spends its token
// and adds the next one of the family.
//
// Reuse: presenting a spent refresh token again means two parties hold the
// family (a stolen token, or a client that lost the answer to its refresh
// and retried): the whole family is revoked and both must sign in again
// (RFC 9700's refresh-token rotation with reuse detection). A client that
// retries a refresh must therefore expect 401 and sign in.

// errBadRefresh is the 401 of a refresh token that is unknown, spent,
// revoked or expired.
var errBadRefresh = &refusal.Error{Kind: refusal.Unauthenticated, Field: "refresh_token", Reason: "bad_refresh_token",
	Message: "refresh token is unknown, spent, revoked or expired; sign in again"}

// sessionTx signs an access token for uid and stores a new refresh token
// in family (nil = a new family) within tx.
func (s *Service) sessionTx(ctx context.Context, tx pgx.Tx, uid uint64, family []byte) (Session, error) {
	tok, err := s.accessToken(uid)
	if err != nil {
		return Session{}, err
	}
	refresh, h, fam, err := s.newRefresh(family)
	if err != nil {
		return Session{}, err
	}
	now := s.now()
	if _, err := tx.Exec(ctx, `INSERT INTO refresh_tokens (token_hash, user_id, family, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)`,
		h, int64(uid), fam, now, now.Add(s.cfg.RefreshTTL)); err != nil {
		return Session{}, err
	}
	return Session{Token: tok, RefreshToken: refresh, UserID: uid}, nil
}

// accessToken signs uid's access token.
func (s *Service) accessToken(uid uint64) (string, error) {
	tok, err := authtoken.Sign(s.cfg.Secret, uid, "", s.cfg.AccessTTL)
	if err != nil {
		s.m.failures.WithLabelValues("sign").Inc()
		s.log.Error("accounts: cannot sign an access token", "user", uid, "err", err)
		return "", refusal.InternalFor("sign_token")
	}
	return tok, nil
}

// newRefresh makes a refresh token, its hash and its family (family, or
// a new one when nil).
func (s *Service) newRefresh(family []byte) (tok string, hash, fam []byte, err error) {
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", nil, nil, s.unavailable("rand", "making a refresh token", err)
	}
	tok = base64.RawURLEncoding.EncodeToString(raw[:])
	if family == nil {
		f := sha256.Sum256(append([]byte("family"), raw[:]...))
		family = f[:16]
	}
	return tok, refreshHash(tok), family, nil
}

func refreshHash(tok string) []byte {
	h := sha256.Sum256([]byte(tok))
	return h[:]
}

// Refresh spends refreshToken and returns a new pair of the same family.
// An unknown, spent, revoked or expired token is 401 naming
// "refresh_token"; a spent one also revokes its family (see above).
func (s *Service) Refresh(ctx context.Context, refreshToken string) (Session, error) {
	if refreshToken == "" || len(refreshToken) > 100 {
		return Session{}, refusal.Invalidf("refresh_token", "refresh_token is required")
	}
	h := refreshHash(refreshToken)
	now := s.now()
	var (
		sess   Session
		result string
		family []byte
	)
	err := s.db.Tx(ctx, func(tx pgx.Tx) error {
		result, family = "", nil
		var uid int64
		err := tx.QueryRow(ctx, `UPDATE refresh_tokens SET spent_at = $2
			WHERE token_hash = $1 AND spent_at IS NULL AND revoked_at IS NULL AND expires_at > $2
			RETURNING user_id, family`, h, now).Scan(&uid, &family)
		if errors.Is(err, pgx.ErrNoRows) {
			result, err = s.reused(ctx, tx, h, now)
			return err
		}
		if err != nil {
			return err
		}
		sess, err = s.sessionTx(ctx, tx, uint64(uid), family)
		result = "ok"
		return err
	})
	if err != nil {
		if e, ok := refusal.As(err); ok {
			return Session{}, e
		}
		return Session{}, s.unavailable("postgres", "refresh", err)
	}
	s.m.refresh.WithLabelValues(result).Inc()
	if result != "ok" {
		if result == "reused" {
			s.log.Warn("accounts: a spent refresh token was presented again; its family is revoked", "family", base64.RawURLEncoding.EncodeToString(family))
		}
		return Session{}, errBadRefresh
	}
	return sess, nil
}

// reused revokes the family of a spent token presented again.
func (s *Service) reused(ctx context.Context, tx pgx.Tx, h []byte, now time.Time) (string, error) {
	var family []byte
	err := tx.QueryRow(ctx, `SELECT family FROM refresh_tokens WHERE token_hash = $1 AND spent_at IS NOT NULL`, h).Scan(&family)
	if errors.Is(err, pgx.ErrNoRows) {
		return "unknown", nil
	}
	if err != nil {
		return "", err
	}
	_, err = tx.Exec(ctx, `UPDATE refresh_tokens SET revoked_at = $2 WHERE family = $1 AND revoked_at IS NULL`, family, now)
	return "reused", err
}

// Logout revokes the session (the family) of refreshToken if it is
// userID's; someone else's or an unknown token changes nothing. It is
// idempotent: the API answers 204 either way.
func (s *Service) Logout(ctx context.Context, userID uint64, refreshToken string) error {
	if refreshToken == "" || len(refreshToken) > 100 {
		return refusal.Invalidf("refresh_token", "refresh_token is required")
	}
	_, err := s.db.Exec(ctx, `UPDATE refresh_tokens SET revoked_at = $3
		WHERE family = (SELECT family FROM refresh_tokens WHERE token_hash = $1 AND user_id = $2) AND revoked_at IS NULL`,
		refreshHash(refreshToken), int64(userID), s.now())
	if err != nil {
		return s.unavailable("postgres", "logout", err)
	}
	s.m.refresh.WithLabelValues("logout").Inc()
	return nil
}
