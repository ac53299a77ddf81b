package rooms

import (
	"context"
	"errors"
	"strconv"

	"github.com/jackc/pgx/v5"

	"github.com/onair/onair/internal/pgdb"
	"github.com/onair/onair/internal/refusal"
	"github.com/onair/onair/rooms/wire"
)

// PK statuses: invited → running (accepted) → ended (a winner, or its
// time over: a draw), or invited → declined / expired (not accepted within
// InviteTTL).
const (
	PKInvited  = "invited"
	PKRunning  = "running"
	PKDeclined = "declined"
	PKExpired  = "expired"
	PKEnded    = "ended"
)

// TypePKInvite is the frame an invited anchor gets on their personal
// channel; PKInviteFrame is its body (POST /v1/pk/{id}/accept or /decline
// before ExpiresAt). Both live in rooms/wire, which push shares.
const TypePKInvite = wire.TypePKInvite

// PKInviteFrame invites room_b's anchor to a PK.
type PKInviteFrame = wire.PKInviteFrame

// PKView is a PK as GET /v1/pk/{id} shows it: its status from PostgreSQL,
// its bar (while running, and after if Redis still has it) from Redis.
type PKView struct {
	PKID      string `json:"pk_id"`
	Status    string `json:"status"`
	RoomA     uint64 `json:"room_a"`
	RoomB     uint64 `json:"room_b"`
	ScoreA    int64  `json:"score_a"`
	ScoreB    int64  `json:"score_b"`
	Winner    uint64 `json:"winner"` // a room id; 0 = none (yet) or a draw
	Version   int64  `json:"version"`
	InvitedAt int64  `json:"invited_at"` // ms
	ExpiresAt int64  `json:"expires_at"` // ms: the invitation's
	StartedAt int64  `json:"started_at,omitempty"`
	EndsAt    int64  `json:"ends_at,omitempty"`
}

type pkRow struct {
	PKID                 string
	RoomA, RoomB         uint64
	Status               string
	InvitedMs, ExpiresMs int64
	StartedMs, EndsMs    int64
	Winner               uint64
}

const selectPK = `SELECT pk_id, room_a, room_b, status, invited_ms, expires_ms, started_ms, ends_ms, winner FROM pks`

func (p pkRow) state() PKState {
	return PKState{ID: p.PKID, RoomA: p.RoomA, RoomB: p.RoomB, Start: p.StartedMs, End: p.EndsMs}
}

func (p pkRow) view() PKView {
	v := PKView{PKID: p.PKID, Status: p.Status, RoomA: p.RoomA, RoomB: p.RoomB, Winner: p.Winner,
		InvitedAt: p.InvitedMs, ExpiresAt: p.ExpiresMs, StartedAt: p.StartedMs, EndsAt: p.EndsMs}
	if p.Status == PKRunning {
		v.ScoreA, v.ScoreB = pkBarStart/10, pkBarStart/10
	}
	return v
}

// runningIn returns a running PK of room, if any ("" = none).
const runningIn = `SELECT pk_id FROM pks WHERE status = 'running' AND ends_ms > $2 AND (room_a = $1 OR room_b = $1) LIMIT 1`

// roomForPK reads a room of a PK request, refusing it naming field when
// it does not exist, is not open or is in a running PK.
func (r *Registry) roomForPK(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, room uint64, field string) (roomRow, error) {
	var row roomRow
	err := q.QueryRow(ctx, selectRoom+` WHERE r.room_id = $1`, int64(room)).
		Scan(&row.RoomID, &row.AnchorID, &row.Title, &row.Category, &row.CoverURL, &row.Status, &row.OpenedMs, &row.Ver)
	if errors.Is(err, pgx.ErrNoRows) {
		return row, r.b.reject("no_room", noRoom(room, field))
	}
	if err != nil {
		return row, err
	}
	if row.Status != "open" {
		return row, r.b.reject("room_closed", refusal.New(refusal.Conflict, field, "room %d is not open", room))
	}
	var busy string
	err = q.QueryRow(ctx, runningIn, int64(room), r.nowMs()).Scan(&busy)
	if err == nil {
		return row, r.b.reject("pk_busy", refusal.New(refusal.Conflict, field, "room %d is in PK %s", room, busy))
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return row, err
	}
	return row, nil
}

// dbRow adapts *pgdb.DB to roomForPK's QueryRow.
type dbRow struct{ db *pgdb.DB }

func (d dbRow) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	return d.db.QueryRow(ctx, sql, args...)
}

// InvitePK invites room_b's anchor to a PK with room_a: who is room_a's
// anchor or an admin; both rooms open and in no running PK. The invited
// anchor gets a pk_invite frame (Notifier); the invitation expires after
// InviteTTL.
func (r *Registry) InvitePK(ctx context.Context, who Caller, roomA, roomB uint64) (PKView, error) {
	switch {
	case roomA == 0:
		return PKView{}, r.b.reject("pk_invalid", refusal.Invalidf("room_a", "is required and must be a positive integer"))
	case roomB == 0:
		return PKView{}, r.b.reject("pk_invalid", refusal.Invalidf("room_b", "is required and must be a positive integer"))
	case roomA == roomB:
		return PKView{}, r.b.reject("pk_invalid", refusal.Invalidf("room_b", "must differ from room_a: an anchor cannot PK their own room"))
	}
	a, err := r.roomForPK(ctx, dbRow{r.db}, roomA, "room_a")
	if err == nil && !who.Admin && who.UserID != a.AnchorID {
		err = r.b.reject("not_anchor", refusal.New(refusal.Forbidden, "", "only room %d's anchor or an admin may invite to a PK", roomA))
	}
	if err != nil {
		return PKView{}, r.pgFail("invite to pk", err)
	}
	b, err := r.roomForPK(ctx, dbRow{r.db}, roomB, "room_b")
	if err != nil {
		return PKView{}, r.pgFail("invite to pk", err)
	}
	now := r.nowMs()
	p := pkRow{PKID: PKID(roomA, roomB, now), RoomA: roomA, RoomB: roomB, Status: PKInvited, InvitedMs: now,
		ExpiresMs: now + r.cfg.InviteTTL.Milliseconds()}
	_, err = r.db.Exec(ctx, `INSERT INTO pks (pk_id, room_a, room_b, invited_by, status, invited_ms, expires_ms)
		VALUES ($1, $2, $3, $4, 'invited', $5, $6)`, p.PKID, int64(roomA), int64(roomB), int64(who.UserID), p.InvitedMs, p.ExpiresMs)
	if pgdb.Code(err) == "23505" {
		return PKView{}, r.b.reject("pk_busy", refusal.New(refusal.Conflict, "room_b", "room %d was invited by room %d this very millisecond", roomB, roomA))
	}
	if err != nil {
		return PKView{}, r.pgFail("invite to pk", err)
	}
	r.log.Info("pk invitation", "pk", p.PKID, "by", who.UserID, "invited", b.AnchorID)
	if r.cfg.Notifier != nil {
		f := PKInviteFrame{Type: TypePKInvite, ID: "pk_invite:" + p.PKID, PKID: p.PKID, RoomA: roomA, RoomB: roomB, FromUserID: a.AnchorID,
			FromNickname: r.nickname(ctx, a.AnchorID), ExpiresAt: p.ExpiresMs}
		if err := r.cfg.Notifier.Notify(ctx, b.AnchorID, f); err != nil {
			r.b.m.failures.WithLabelValues("notify").Inc()
			r.log.Warn("pk invitation not delivered; it stands until it expires", "pk", p.PKID, "anchor", b.AnchorID, "err", err)
		}
	}
	return p.view(), nil
}

// AnswerPK accepts or declines an invitation: only room_b's anchor may
// (Forbidden otherwise, admins too), only while it is invited and not
// expired (Conflict). On accept both rooms must still be open and free;
// the bar starts at 50:50.
func (r *Registry) AnswerPK(ctx context.Context, who Caller, id string, accept bool) (PKView, error) {
	var p pkRow
	expired := false
	err := r.db.Tx(ctx, func(tx pgx.Tx) error {
		expired = false
		var anchorB uint64
		err := tx.QueryRow(ctx, `SELECT p.pk_id, p.room_a, p.room_b, p.status, p.invited_ms, p.expires_ms, p.started_ms, p.ends_ms, p.winner, rb.anchor_id
			FROM pks p JOIN rooms rb ON rb.room_id = p.room_b WHERE p.pk_id = $1 FOR UPDATE OF p`, id).
			Scan(&p.PKID, &p.RoomA, &p.RoomB, &p.Status, &p.InvitedMs, &p.ExpiresMs, &p.StartedMs, &p.EndsMs, &p.Winner, &anchorB)
		now := r.nowMs()
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return r.b.reject("no_pk", refusal.New(refusal.NotFound, "", "no PK %s", id))
		case err != nil:
			return err
		case who.UserID != anchorB:
			return r.b.reject("not_anchor", refusal.New(refusal.Forbidden, "", "only room %d's anchor may answer PK %s", p.RoomB, id))
		case p.Status != PKInvited:
			return r.b.reject("pk_answered", refusal.New(refusal.Conflict, "", "PK %s is %s", id, p.Status))
		case now >= p.ExpiresMs:
			expired, p.Status = true, PKExpired
			_, err := tx.Exec(ctx, `UPDATE pks SET status = 'expired' WHERE pk_id = $1`, id)
			return err
		case !accept:
			p.Status = PKDeclined
			_, err := tx.Exec(ctx, `UPDATE pks SET status = 'declined' WHERE pk_id = $1`, id)
			return err
		}
		// both rooms locked in id order, so two accepts naming a room cannot both see it free
		if _, err := tx.Exec(ctx, `SELECT 1 FROM rooms WHERE room_id IN ($1, $2) ORDER BY room_id FOR UPDATE`, int64(p.RoomA), int64(p.RoomB)); err != nil {
			return err
		}
		for _, rf := range []struct {
			room  uint64
			field string
		}{{p.RoomA, "room_a"}, {p.RoomB, "room_b"}} {
			if _, err := r.roomForPK(ctx, tx, rf.room, rf.field); err != nil {
				return err
			}
		}
		p.Status, p.StartedMs, p.EndsMs = PKRunning, now, now+r.b.cfg.PKDuration.Milliseconds()
		_, err = tx.Exec(ctx, `UPDATE pks SET status = 'running', started_ms = $2, ends_ms = $3 WHERE pk_id = $1`, id, p.StartedMs, p.EndsMs)
		return err
	})
	if err != nil {
		return PKView{}, r.pgFail("answer pk", err)
	}
	if expired {
		return PKView{}, r.b.reject("pk_expired", refusal.New(refusal.Conflict, "", "PK invitation %s expired at %d", id, p.ExpiresMs))
	}
	r.log.Info("pk answered", "pk", id, "status", p.Status, "by", who.UserID)
	if !accept {
		return p.view(), nil
	}
	f, err := r.b.StartPK(ctx, p.state())
	if err != nil {
		// Redis refused or failed: the PK never ran; say so in PostgreSQL
		if _, uerr := r.db.Exec(ctx, `UPDATE pks SET status = 'ended' WHERE pk_id = $1 AND status = 'running'`, id); uerr != nil {
			r.b.m.failures.WithLabelValues("postgres").Inc()
			r.log.Error("PK accepted but not started, and not marked ended", "pk", id, "err", uerr)
		}
		return PKView{}, err
	}
	v := p.view()
	v.ScoreA, v.ScoreB, v.Version = f.ScoreA, f.ScoreB, f.Version
	return v, nil
}

// GetPK returns a PK; an invitation past its expiry reads as expired, and
// a running PK that Redis decided (a winner, or time over) as ended (both
// recorded in PostgreSQL as they are read).
func (r *Registry) GetPK(ctx context.Context, id string) (PKView, error) {
	var p pkRow
	err := r.db.QueryRow(ctx, selectPK+` WHERE pk_id = $1`, id).
		Scan(&p.PKID, &p.RoomA, &p.RoomB, &p.Status, &p.InvitedMs, &p.ExpiresMs, &p.StartedMs, &p.EndsMs, &p.Winner)
	if errors.Is(err, pgx.ErrNoRows) {
		return PKView{}, r.b.reject("no_pk", refusal.New(refusal.NotFound, "", "no PK %s", id))
	}
	if err != nil {
		return PKView{}, r.pgFail("read pk", err)
	}
	if p.Status == PKInvited && r.nowMs() >= p.ExpiresMs {
		if _, err := r.db.Exec(ctx, `UPDATE pks SET status = 'expired' WHERE pk_id = $1 AND status = 'invited'`, id); err != nil {
			return PKView{}, r.pgFail("expire pk", err)
		}
		p.Status = PKExpired
	}
	vs, err := r.withBars(ctx, []pkRow{p})
	if err != nil {
		return PKView{}, err
	}
	return vs[0], nil
}

// LivePKs lists running PKs, newest first, at most limit.
func (r *Registry) LivePKs(ctx context.Context, limit int) ([]PKView, error) {
	rows, err := pgdb.Collect(ctx, r.db, pgx.RowToStructByPos[pkRow],
		selectPK+` WHERE status = 'running' AND ends_ms > $1 ORDER BY started_ms DESC, pk_id LIMIT $2`, r.nowMs(), limit)
	if err != nil {
		return nil, r.pgFail("list pks", err)
	}
	vs, err := r.withBars(ctx, rows)
	if err != nil {
		return nil, err
	}
	out := vs[:0]
	for _, v := range vs {
		if v.Status == PKRunning {
			out = append(out, v)
		}
	}
	return out, nil
}

// withBars adds Redis's bars to PKs that ran, and settles those Redis
// decided.
func (r *Registry) withBars(ctx context.Context, rows []pkRow) ([]PKView, error) {
	out := make([]PKView, len(rows))
	for i, p := range rows {
		out[i] = p.view()
		if p.StartedMs == 0 {
			continue
		}
		f, err := r.b.PK(ctx, p.PKID)
		if e, ok := refusal.As(err); ok && e.Kind == refusal.NotFound {
			continue // Redis lost or expired it; Run restores a running one
		}
		if err != nil {
			return nil, err
		}
		out[i].ScoreA, out[i].ScoreB, out[i].Version = f.ScoreA, f.ScoreB, f.Version
		if p.Status == PKRunning && (f.Winner != 0 || r.nowMs() >= p.EndsMs) {
			if err := r.settle(ctx, p.PKID, f.Winner); err != nil {
				return nil, err
			}
			out[i].Status, out[i].Winner = PKEnded, f.Winner
		}
	}
	return out, nil
}

// settle records a running PK as ended with winner (0 = a draw).
func (r *Registry) settle(ctx context.Context, id string, winner uint64) error {
	tag, err := r.db.Exec(ctx, `UPDATE pks SET status = 'ended', winner = $2 WHERE pk_id = $1 AND status = 'running'`, id, int64(winner))
	if err != nil {
		return r.pgFail("settle pk", err)
	}
	if tag.RowsAffected() == 1 {
		r.log.Info("pk ended", "pk", id, "winner", winner)
	}
	return nil
}

// settlePKs records as ended every running PK Redis decided or whose time
// is over (Run's tick).
func (r *Registry) settlePKs(ctx context.Context) error {
	rows, err := pgdb.Collect(ctx, r.db, pgx.RowToStructByPos[pkRow], selectPK+` WHERE status = 'running'`)
	if err != nil {
		return err
	}
	now := r.nowMs()
	for _, p := range rows {
		if now >= p.EndsMs {
			winner := uint64(0)
			if f, err := r.b.PK(ctx, p.PKID); err == nil {
				winner = f.Winner
			}
			if err := r.settle(ctx, p.PKID, winner); err != nil {
				return err
			}
		}
	}
	_, err = r.withBars(ctx, rows)
	return err
}

// ParsePKID checks a PK id's form (GET /v1/pk/{id}): "<a>-<b>-<ms>".
func ParsePKID(id string) bool {
	_, _, ok := pkRooms(id)
	return ok && len(id) <= 64 && strconv.QuoteToASCII(id) == `"`+id+`"`
}
