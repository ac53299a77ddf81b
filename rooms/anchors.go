package rooms

import (
	"context"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/onair/onair/internal/pgdb"
	"github.com/onair/onair/internal/refusal"
)

// Anchor statuses. A user applies (pending); an admin approves or revokes;
// a revoked anchor may apply again (pending once more; their room stays
// theirs, closed, until an admin approves them again).
const (
	AnchorPending  = "pending"
	AnchorApproved = "approved"
	AnchorRevoked  = "revoked"
)

// Anchor is one application to be an anchor and its decision.
type Anchor struct {
	UserID    uint64 `json:"user_id"`
	Nickname  string `json:"nickname"`
	Status    string `json:"status"`
	Reason    string `json:"reason"`
	AppliedAt int64  `json:"applied_at"`           // ms
	DecidedAt int64  `json:"decided_at,omitempty"` // ms; 0 = not yet
}

type anchorRow struct {
	UserID               uint64
	Status, Reason       string
	AppliedMs, DecidedMs int64
}

const selectAnchor = `SELECT user_id, status, reason, applied_ms, decided_ms FROM anchors`

func (r *Registry) anchorOf(ctx context.Context, row anchorRow) Anchor {
	return Anchor{UserID: row.UserID, Nickname: r.nickname(ctx, row.UserID), Status: row.Status, Reason: row.Reason,
		AppliedAt: row.AppliedMs, DecidedAt: row.DecidedMs}
}

// Apply records uid's application to be an anchor. Applying again while
// pending or approved changes nothing (the first reason stands); a
// revoked anchor's application makes them pending again.
func (r *Registry) Apply(ctx context.Context, uid uint64, reason string) (Anchor, error) {
	reason = strings.TrimSpace(reason)
	switch n := utf8.RuneCountInString(reason); {
	case !utf8.ValidString(reason):
		return Anchor{}, r.b.reject("reason_invalid", refusal.Invalidf("reason", "is not valid UTF-8"))
	case n == 0:
		return Anchor{}, r.b.reject("reason_invalid", refusal.Invalidf("reason", "is required and must not be blank"))
	case n > r.cfg.MaxReason:
		return Anchor{}, r.b.reject("reason_invalid", refusal.Invalidf("reason", "has %d characters; at most %d", n, r.cfg.MaxReason))
	}
	var row anchorRow
	err := r.db.QueryRow(ctx, `INSERT INTO anchors AS a (user_id, status, reason, applied_ms) VALUES ($1, 'pending', $2, $3)
		ON CONFLICT (user_id) DO UPDATE SET status = 'pending', reason = EXCLUDED.reason, applied_ms = EXCLUDED.applied_ms,
			decided_ms = 0, decided_by = 0
		WHERE a.status = 'revoked'
		RETURNING user_id, status, reason, applied_ms, decided_ms`, int64(uid), reason, r.nowMs()).
		Scan(&row.UserID, &row.Status, &row.Reason, &row.AppliedMs, &row.DecidedMs)
	if errors.Is(err, pgx.ErrNoRows) { // pending or approved already
		err = r.db.QueryRow(ctx, selectAnchor+` WHERE user_id = $1`, int64(uid)).
			Scan(&row.UserID, &row.Status, &row.Reason, &row.AppliedMs, &row.DecidedMs)
	}
	if err != nil {
		return Anchor{}, r.pgFail("apply as anchor", err)
	}
	return r.anchorOf(ctx, row), nil
}

// Anchors lists applications with status (pending, approved, revoked) by
// user id, at most limit after cursor ("" = from the start); next is ""
// at the end. A malformed cursor is refused naming "cursor".
func (r *Registry) Anchors(ctx context.Context, status string, limit int, cursor string) (items []Anchor, next string, err error) {
	switch status {
	case AnchorPending, AnchorApproved, AnchorRevoked:
	default:
		return nil, "", refusal.Invalidf("status", "must be one of pending, approved, revoked")
	}
	after, e := decodeCursor(cursor, "u")
	if e != nil {
		return nil, "", e
	}
	rows, err := pgdb.Collect(ctx, r.db, pgx.RowToStructByPos[anchorRow],
		selectAnchor+` WHERE status = $1 AND user_id > $2 ORDER BY user_id LIMIT $3`, status, int64(after[0]), limit+1)
	if err != nil {
		return nil, "", r.pgFail("list anchors", err)
	}
	if len(rows) > limit {
		rows = rows[:limit]
		next = encodeCursor("u", int64(rows[limit-1].UserID))
	}
	items = make([]Anchor, len(rows))
	for i, row := range rows {
		items[i] = r.anchorOf(ctx, row)
	}
	return items, next, nil
}

// Approve makes uid an approved anchor (idempotent). A user who never
// applied is NotFound.
func (r *Registry) Approve(ctx context.Context, admin Caller, uid uint64) (Anchor, error) {
	var row anchorRow
	err := r.db.QueryRow(ctx, `UPDATE anchors SET status = 'approved', decided_ms = $2, decided_by = $3
		WHERE user_id = $1 RETURNING user_id, status, reason, applied_ms, decided_ms`, int64(uid), r.nowMs(), int64(admin.UserID)).
		Scan(&row.UserID, &row.Status, &row.Reason, &row.AppliedMs, &row.DecidedMs)
	if errors.Is(err, pgx.ErrNoRows) {
		return Anchor{}, r.b.reject("no_anchor", refusal.New(refusal.NotFound, "user_id", "user %d has not applied to be an anchor", uid))
	}
	if err != nil {
		return Anchor{}, r.pgFail("approve anchor", err)
	}
	r.log.Info("anchor approved", "user", uid, "by", admin.UserID)
	return r.anchorOf(ctx, row), nil
}

// Revoke revokes uid's anchor status and, in the same transaction, closes
// their room if it is open (its viewers get the room frame).
func (r *Registry) Revoke(ctx context.Context, admin Caller, uid uint64) (Anchor, error) {
	var row anchorRow
	var closed []roomRow
	err := r.db.Tx(ctx, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `UPDATE anchors SET status = 'revoked', decided_ms = $2, decided_by = $3
			WHERE user_id = $1 RETURNING user_id, status, reason, applied_ms, decided_ms`, int64(uid), r.nowMs(), int64(admin.UserID)).
			Scan(&row.UserID, &row.Status, &row.Reason, &row.AppliedMs, &row.DecidedMs)
		if errors.Is(err, pgx.ErrNoRows) {
			return r.b.reject("no_anchor", refusal.New(refusal.NotFound, "user_id", "user %d has not applied to be an anchor", uid))
		}
		if err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `UPDATE rooms SET status = 'closed', ver = ver + 1
			WHERE anchor_id = $1 AND status = 'open' RETURNING `+roomColumns, int64(uid))
		if err != nil {
			return err
		}
		closed, err = pgx.CollectRows(rows, pgx.RowToStructByPos[roomRow])
		return err
	})
	if err != nil {
		return Anchor{}, r.pgFail("revoke anchor", err)
	}
	r.log.Info("anchor revoked", "user", uid, "by", admin.UserID, "rooms_closed", len(closed))
	for _, rr := range closed {
		if _, err := r.b.PutRoom(ctx, rr.state()); err != nil {
			return Anchor{}, r.hotFail(rr.RoomID, err)
		}
	}
	return r.anchorOf(ctx, row), nil
}

// Cursors are opaque to clients: base64url of "<kind>:<n>[:<n>]".
func encodeCursor(kind string, ns ...int64) string {
	s := kind
	for _, n := range ns {
		s += ":" + strconv.FormatInt(n, 10)
	}
	return base64.RawURLEncoding.EncodeToString([]byte(s))
}

// decodeCursor reads a cursor of kind with its numbers (all zero for "").
func decodeCursor(c, kind string) ([2]uint64, *refusal.Error) {
	var out [2]uint64
	if c == "" {
		return out, nil
	}
	bad := refusal.Invalidf("cursor", "is not a cursor this list returned")
	raw, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return out, bad
	}
	parts := strings.Split(string(raw), ":")
	if len(parts) < 2 || len(parts) > 3 || parts[0] != kind {
		return out, bad
	}
	for i, p := range parts[1:] {
		n, err := strconv.ParseUint(p, 10, 63)
		if err != nil {
			return out, bad
		}
		out[i] = n
	}
	return out, nil
}
