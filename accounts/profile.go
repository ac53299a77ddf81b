package accounts

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/onair/onair/internal/refusal"
)

// Limits of a profile.
const (
	MaxNickname  = 20  // characters
	MaxAvatarURL = 512 // bytes
)

// Profile is a user as GET /v1/me shows it to its owner; Public drops
// what only the owner sees.
type Profile struct {
	UserID    uint64 `json:"user_id"`
	Nickname  string `json:"nickname"`
	AvatarURL string `json:"avatar_url"`
	// Phone is the owner's own, E.164; "" in a public profile.
	Phone string `json:"phone,omitempty"`
}

// Public is p without what only its owner may see (the phone).
func (p Profile) Public() Profile { p.Phone = ""; return p }

// BlockedWords finds a blocked word in a text: rooms' admin list
// (*rooms.Board), so a nickname obeys the list danmaku obey.
type BlockedWords interface {
	// Blocked returns the first blocked word in text, or "".
	Blocked(ctx context.Context, text string) string
}

// ErrNoUser is the 404 of a user id that names no one.
var ErrNoUser = &refusal.Error{Kind: refusal.NotFound, Field: "id", Reason: "no_user", Message: "no such user"}

// Profile returns userID's profile, phone included: only for its owner
// (GET /v1/me); others get Public().
func (s *Service) Profile(ctx context.Context, userID uint64) (Profile, error) {
	p := Profile{UserID: userID}
	err := s.db.QueryRow(ctx, `SELECT nickname, avatar_url, coalesce(phone, '') FROM users WHERE id = $1`, int64(userID)).
		Scan(&p.Nickname, &p.AvatarURL, &p.Phone)
	if errors.Is(err, pgx.ErrNoRows) {
		return Profile{}, ErrNoUser
	}
	if err != nil {
		return Profile{}, s.unavailable("postgres", "reading the profile", err)
	}
	return p, nil
}

// ProfileUpdate is PATCH /v1/me's body: a nil field is left as it is.
type ProfileUpdate struct {
	Nickname  *string `json:"nickname"`
	AvatarURL *string `json:"avatar_url"`
}

// Update changes userID's own profile and returns it. A nickname has 1 to
// MaxNickname characters after trimming, no control character and no
// blocked word; an avatar URL is https with a host, at most MaxAvatarURL
// bytes, or "" for none. Refusals name the field. The new nickname reaches
// Names on every node within its TTL.
func (s *Service) Update(ctx context.Context, userID uint64, u ProfileUpdate, words BlockedWords) (Profile, error) {
	if u.Nickname != nil {
		n, e := checkNickname(*u.Nickname)
		if e != nil {
			return Profile{}, e
		}
		if words != nil {
			if w := words.Blocked(ctx, n); w != "" {
				return Profile{}, refusal.Invalidf("nickname", "nickname contains a blocked word")
			}
		}
		u.Nickname = &n
	}
	if u.AvatarURL != nil {
		if e := checkAvatar(*u.AvatarURL); e != nil {
			return Profile{}, e
		}
	}
	p := Profile{UserID: userID}
	err := s.db.QueryRow(ctx, `UPDATE users SET nickname = COALESCE($2, nickname), avatar_url = COALESCE($3, avatar_url),
		updated_at = now() WHERE id = $1 RETURNING nickname, avatar_url, coalesce(phone, '')`, int64(userID), u.Nickname, u.AvatarURL).
		Scan(&p.Nickname, &p.AvatarURL, &p.Phone)
	if errors.Is(err, pgx.ErrNoRows) {
		return Profile{}, ErrNoUser
	}
	if err != nil {
		return Profile{}, s.unavailable("postgres", "updating the profile", err)
	}
	s.names.changed(ctx, userID, p.Nickname)
	return p, nil
}

func checkNickname(n string) (string, *refusal.Error) {
	n = strings.TrimSpace(n)
	switch c := utf8.RuneCountInString(n); {
	case !utf8.ValidString(n):
		return "", refusal.Invalidf("nickname", "nickname is not valid UTF-8")
	case c == 0:
		return "", refusal.Invalidf("nickname", "nickname must have 1 to %d characters", MaxNickname)
	case c > MaxNickname:
		return "", refusal.Invalidf("nickname", "nickname has %d characters; at most %d", c, MaxNickname)
	}
	for _, r := range n {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return "", refusal.Invalidf("nickname", "nickname must not contain control characters")
		}
	}
	return n, nil
}

func checkAvatar(a string) *refusal.Error {
	if a == "" {
		return nil
	}
	if len(a) > MaxAvatarURL {
		return refusal.Invalidf("avatar_url", "avatar_url has %d bytes; at most %d", len(a), MaxAvatarURL)
	}
	u, err := url.Parse(a)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || strings.ContainsAny(a, " \t\r\n\"'<>") {
		return refusal.Invalidf("avatar_url", "avatar_url must be an https:// URL with a host")
	}
	return nil
}
