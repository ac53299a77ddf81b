package accounts

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/onair/onair/internal/refusal"
)

// SendCode makes a new 6-digit code for phone, valid CodeTTL, and sends it
// through the SMS gateway. At most one code per phone per CodeInterval:
// sooner is a 429 whose RetryAfterMs says when. The code is stored only as
// an HMAC. devCode is the code itself when dev codes are on (else "").
func (s *Service) SendCode(ctx context.Context, rawPhone string) (devCode string, err error) {
	phone, e := NormalizePhone(rawPhone)
	if e != nil {
		return "", e
	}
	if s.cfg.SMS == nil && !s.cfg.DevCodes {
		s.m.codes.WithLabelValues("no_gateway").Inc()
		return "", ErrNoGateway
	}
	code, err := newCode()
	if err != nil {
		return "", s.unavailable("rand", "making a code", err)
	}
	now := s.now()
	ph, ch := s.phoneHash(phone), s.codeHash(phone, code)
	// One statement: a new row, or the old one replaced once the interval
	// has passed. Two requests at once: one wins the row, the other sees
	// its fresh sent_at and is told to wait.
	var sentAt time.Time
	err = s.db.QueryRow(ctx, `INSERT INTO sms_codes AS c (phone_hash, code_hash, sent_at, expires_at, tries, used)
		VALUES ($1, $2, $3, $4, 0, false)
		ON CONFLICT (phone_hash) DO UPDATE SET code_hash = EXCLUDED.code_hash, sent_at = EXCLUDED.sent_at,
			expires_at = EXCLUDED.expires_at, tries = 0, used = false
		WHERE c.sent_at <= $5
		RETURNING sent_at`, ph, ch, now, now.Add(s.cfg.CodeTTL), now.Add(-s.cfg.CodeInterval)).Scan(&sentAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", s.tooSoon(ctx, ph, now)
	}
	if err != nil {
		return "", s.unavailable("postgres", "storing the code", err)
	}
	if s.cfg.SMS != nil {
		if err := s.cfg.SMS.Send(ctx, phone, code); err != nil {
			s.m.codes.WithLabelValues("failed").Inc()
			s.m.failures.WithLabelValues("sms").Inc()
			s.log.Warn("accounts: the SMS gateway did not take the code", "phone", maskPhone(phone), "err", err)
			// forget it, so the user may ask again at once
			if _, derr := s.db.Exec(context.WithoutCancel(ctx), `DELETE FROM sms_codes WHERE phone_hash = $1 AND code_hash = $2`, ph, ch); derr != nil {
				s.unavailable("postgres", "forgetting an unsent code", derr)
			}
			return "", refusal.UnavailableFor("sms_gateway", "the SMS gateway did not take the code; retry")
		}
	}
	if s.cfg.DevCodes {
		s.m.codes.WithLabelValues("dev").Inc()
		s.log.Info("accounts: dev sign-in code (dev sign-in is on: the reply carries it too)", "phone", maskPhone(phone), "code", code)
		return code, nil
	}
	s.m.codes.WithLabelValues("sent").Inc()
	return "", nil
}

// tooSoon is the 429 of a second code within the interval.
func (s *Service) tooSoon(ctx context.Context, ph []byte, now time.Time) error {
	s.m.codes.WithLabelValues("too_soon").Inc()
	var sentAt time.Time
	wait := s.cfg.CodeInterval
	if err := s.db.QueryRow(ctx, `SELECT sent_at FROM sms_codes WHERE phone_hash = $1`, ph).Scan(&sentAt); err == nil {
		wait = max(sentAt.Add(s.cfg.CodeInterval).Sub(now), time.Second)
	}
	return &refusal.Error{Kind: refusal.RateLimited, Field: "phone", Reason: "code_too_soon", RetryAfterMs: wait.Milliseconds(),
		Message: fmt.Sprintf("a code was sent to this phone less than %s ago; retry in %d s", s.cfg.CodeInterval, (wait.Milliseconds()+999)/1000)}
}

// Session is what a sign-in or a refresh returns.
type Session struct {
	Token        string `json:"token"`
	RefreshToken string `json:"refresh_token"`
	UserID       uint64 `json:"user_id"`
	// New is true on the sign-in that created the user.
	New bool `json:"new"`
}

// Login checks phone's code and signs the user in, creating them on the
// first sign-in of the phone. A wrong code is 401 naming "code"; the
// MaxTries-th wrong code voids it (429), as does any try after; no code,
// an expired or a used one is 401.
func (s *Service) Login(ctx context.Context, rawPhone, code string) (Session, error) {
	phone, e := NormalizePhone(rawPhone)
	if e != nil {
		return Session{}, e
	}
	if len(code) != 6 {
		return Session{}, refusal.Invalidf("code", "code must be the 6 digits sent by SMS")
	}
	now := s.now()
	ph, ch := s.phoneHash(phone), s.codeHash(phone, code)
	outcome, sess, err := s.loginExisting(ctx, phone, ph, ch, now)
	if err != nil {
		return Session{}, err
	}
	if outcome == "new_phone" {
		outcome, sess, err = s.loginNew(ctx, phone, ph, ch, now)
		if err != nil {
			return Session{}, err
		}
	}
	switch outcome {
	case "void":
		s.m.logins.WithLabelValues("void").Inc()
		return Session{}, &refusal.Error{Kind: refusal.RateLimited, Field: "code", Reason: "code_void",
			Message: fmt.Sprintf("%d wrong codes: this code is void; request a new one", s.cfg.MaxTries)}
	case "wrong_code":
		s.m.logins.WithLabelValues("wrong_code").Inc()
		return Session{}, &refusal.Error{Kind: refusal.Unauthenticated, Field: "code", Reason: "wrong_code", Message: "wrong code"}
	case "no_code":
		s.m.logins.WithLabelValues("no_code").Inc()
		return Session{}, &refusal.Error{Kind: refusal.Unauthenticated, Field: "code", Reason: "no_code",
			Message: "no valid code for this phone (none sent, expired or already used); request a new one"}
	}
	if sess.New {
		s.m.logins.WithLabelValues("new_user").Inc()
		s.log.Info("accounts: new user", "user", sess.UserID)
	} else {
		s.m.logins.WithLabelValues("ok").Inc()
	}
	return sess, nil
}

// loginExisting is the sign-in of a phone that has a user: one statement
// (one round trip, one commit) checks and counts the code, spends it only
// when it is right and the user exists, and stores the refresh token.
// Concurrent tries of one code are serialised on its row, and a right
// code is spent by exactly one of them. A right code of a phone without a
// user is left unspent and reported as "new_phone" (loginNew).
func (s *Service) loginExisting(ctx context.Context, phone string, ph, ch []byte, now time.Time) (string, Session, error) {
	refresh, h, fam, err := s.newRefresh(nil)
	if err != nil {
		return "", Session{}, err
	}
	var (
		right, used bool
		tries       int
		uid         *int64
	)
	err = s.db.QueryRow(ctx, `WITH u AS (SELECT id FROM users WHERE phone = $5),
		c AS (UPDATE sms_codes SET used = (code_hash = $2 AND EXISTS (SELECT 1 FROM u)), tries = tries + (code_hash <> $2)::int
			WHERE phone_hash = $1 AND NOT used AND expires_at > $3 AND tries < $4
			RETURNING code_hash = $2 AS ok_code, used, tries),
		r AS (INSERT INTO refresh_tokens (token_hash, user_id, family, created_at, expires_at)
			SELECT $6, u.id, $7, $3, $8 FROM c, u WHERE c.used RETURNING user_id)
		SELECT c.ok_code, c.used, c.tries, (SELECT user_id FROM r) FROM c`,
		ph, ch, now, s.cfg.MaxTries, phone, h, fam, now.Add(s.cfg.RefreshTTL)).Scan(&right, &used, &tries, &uid)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		var why string
		err = s.db.Tx(ctx, func(tx pgx.Tx) (err error) {
			why, err = s.whyNoCode(ctx, tx, ph)
			return err
		})
		if err != nil {
			return "", Session{}, s.unavailable("postgres", "sign-in", err)
		}
		return why, Session{}, nil
	case err != nil:
		return "", Session{}, s.unavailable("postgres", "sign-in", err)
	case right && !used:
		return "new_phone", Session{}, nil
	case !right && tries >= s.cfg.MaxTries:
		return "void", Session{}, nil
	case !right:
		return "wrong_code", Session{}, nil
	case uid == nil:
		return "", Session{}, s.unavailable("postgres", "sign-in", errors.New("the code was spent without a session"))
	}
	tok, err := s.accessToken(uint64(*uid))
	if err != nil {
		return "", Session{}, err
	}
	return "ok", Session{Token: tok, RefreshToken: refresh, UserID: uint64(*uid)}, nil
}

// loginNew is the first sign-in of a phone: the code, the new user and
// the session are one transaction, so a failure anywhere leaves the code
// unspent, to be tried again. A new user's id is taken outside it (see
// errNeedID), then the transaction runs again.
func (s *Service) loginNew(ctx context.Context, phone string, ph, ch []byte, now time.Time) (string, Session, error) {
	var (
		outcome string
		uid     uint64
		created bool
		sess    Session
	)
	var newID int64
	tx := func(tx pgx.Tx) error {
		outcome, uid, created = "", 0, false
		var tries int
		var right bool
		// The check and the count are one statement: concurrent tries of
		// one code are serialised on its row, and a right code is spent
		// (used) by exactly one of them.
		err := tx.QueryRow(ctx, `UPDATE sms_codes SET used = (code_hash = $2), tries = tries + (code_hash <> $2)::int
			WHERE phone_hash = $1 AND NOT used AND expires_at > $3 AND tries < $4
			RETURNING used, tries`, ph, ch, now, s.cfg.MaxTries).Scan(&right, &tries)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			outcome, err = s.whyNoCode(ctx, tx, ph)
			return err
		case err != nil:
			return err
		case !right && tries >= s.cfg.MaxTries:
			outcome = "void"
			return nil
		case !right:
			outcome = "wrong_code"
			return nil
		}
		if uid, created, err = s.userFor(ctx, tx, phone, newID); err != nil {
			return err
		}
		outcome = "ok"
		sess, err = s.sessionTx(ctx, tx, uid, nil)
		return err
	}
	err := s.db.Tx(ctx, tx)
	if errors.Is(err, errNeedID) {
		if newID, err = s.ids.Next(ctx); err == nil {
			err = s.db.Tx(ctx, tx)
		}
	}
	if err != nil {
		if e, ok := refusal.As(err); ok {
			return "", Session{}, e
		}
		return "", Session{}, s.unavailable("postgres", "sign-in", err)
	}
	sess.New = created
	return outcome, sess, nil
}

// whyNoCode tells a void code (429) from a missing, expired or used one.
func (s *Service) whyNoCode(ctx context.Context, tx pgx.Tx, ph []byte) (string, error) {
	var tries int
	var used bool
	err := tx.QueryRow(ctx, `SELECT tries, used FROM sms_codes WHERE phone_hash = $1`, ph).Scan(&tries, &used)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return "no_code", nil
	case err != nil:
		return "", err
	case !used && tries >= s.cfg.MaxTries:
		return "void", nil
	}
	return "no_code", nil
}

// errNeedID rolls back a sign-in transaction that found a right code for
// a phone without a user and has no id for one: the allocator may need a
// connection of its own to fetch a block, which a transaction holding one
// must not wait for (a full pool of sign-ins would deadlock), so the id is
// taken outside and the transaction runs again (the code is unspent: the
// rollback undid it). Only right codes of new phones take ids; an id taken
// by a sign-in that then finds the user made meanwhile is a gap, never a
// reuse.
var errNeedID = errors.New("a new user needs an id")

// userFor returns the id of phone's user, creating the user with newID on
// its first sign-in. Two first sign-ins at once (two nodes) make one user:
// the insert of the second does nothing on the phone's unique index (it
// waits for the first's transaction) and it reads the first's row.
func (s *Service) userFor(ctx context.Context, tx pgx.Tx, phone string, newID int64) (uint64, bool, error) {
	var id int64
	err := tx.QueryRow(ctx, `SELECT id FROM users WHERE phone = $1`, phone).Scan(&id)
	if err == nil {
		return uint64(id), false, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return 0, false, err
	}
	if newID == 0 {
		return 0, false, errNeedID
	}
	nid := newID
	nick, err := newNickname()
	if err != nil {
		return 0, false, err
	}
	err = tx.QueryRow(ctx, `INSERT INTO users (id, phone, nickname) VALUES ($1, $2, $3)
		ON CONFLICT (phone) DO NOTHING RETURNING id`, nid, phone, nick).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) { // another sign-in created it since our SELECT
		err = tx.QueryRow(ctx, `SELECT id FROM users WHERE phone = $1`, phone).Scan(&id)
		return uint64(id), false, err
	}
	return uint64(id), err == nil, err
}

func (s *Service) phoneHash(phone string) []byte { return s.mac("phone", phone) }

func (s *Service) codeHash(phone, code string) []byte { return s.mac("code", phone, code) }

// newCode is a uniformly random 6-digit code.
func newCode() (string, error) {
	n, err := rand.Int(rand.Reader, big.NewInt(1_000_000))
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%06d", n.Int64()), nil
}

// newNickname is a new user's nickname: listener-<4 random digits>.
func newNickname() (string, error) {
	n, err := rand.Int(rand.Reader, big.NewInt(10_000))
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("listener-%04d", n.Int64()), nil
}
