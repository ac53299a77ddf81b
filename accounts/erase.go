package accounts

import (
	"context"
	"fmt"
)

// ErasedNickname names an erased account wherever it is still shown.
const ErasedNickname = "erased"

// Erase removes what the account holds of a person (the erasure of
// POST /v1/admin/users/{id}/erase): the phone (no sign-in finds the account
// again), the nickname and avatar, every session (refresh tokens revoked;
// an access token lives out its hour), and the Redis hot copy of the name.
// The id stays, so the ledger's entries (money records a platform must
// keep) still name an account. Erasing twice, or an id that names no one,
// is not an error. Pending sign-in codes are keyed by the phone's HMAC and
// expire within 5 minutes.
func (s *Service) Erase(ctx context.Context, userID uint64) error {
	_, err := s.db.Exec(ctx, `WITH u AS (
			UPDATE users SET phone = NULL, nickname = $2, avatar_url = '', erased_at = coalesce(erased_at, now()), updated_at = now()
			WHERE id = $1 RETURNING id)
		UPDATE refresh_tokens SET revoked_at = now() WHERE user_id IN (SELECT id FROM u) AND revoked_at IS NULL`,
		int64(userID), ErasedNickname)
	if err != nil {
		return fmt.Errorf("cannot erase account %d: %w", userID, err)
	}
	if s.cfg.Redis != nil {
		if err := s.cfg.Redis.Del(ctx, ProfileKey(s.cfg.Prefix, userID)).Err(); err != nil {
			return fmt.Errorf("cannot drop the name of account %d from Redis: %w", userID, err)
		}
	}
	return nil
}
