package rooms

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/onair/onair/internal/pgdb"
	"github.com/onair/onair/internal/refusal"
)

// RoomInput is a room as its anchor describes it (POST /v1/rooms).
type RoomInput struct {
	Title    string
	Category string
	CoverURL string
}

// Bounds of RoomInput.
const (
	maxTitle    = 50  // characters
	maxCategory = 20  // bytes of [a-z0-9_-]
	maxCoverURL = 512 // bytes
)

// RoomView is a room as a caller sees it: the hot copy's state, the
// anchor's nickname and signed stream URLs (push_url for its anchor only).
type RoomView struct {
	Room
	AnchorNickname string `json:"anchor_nickname"`
	PlayURL        string `json:"play_url,omitempty"`
	PushURL        string `json:"push_url,omitempty"`
}

// roomRow is a row of rooms, in roomColumns' order.
type roomRow struct {
	RoomID, AnchorID          uint64
	Title, Category, CoverURL string
	Status                    string
	OpenedMs, Ver             int64
}

const roomColumns = `room_id, anchor_id, title, category, cover_url, status, opened_ms, ver`

const selectRoom = `SELECT r.room_id, r.anchor_id, r.title, r.category, r.cover_url, r.status, r.opened_ms, r.ver FROM rooms r`

func (rr roomRow) state() RoomState {
	return RoomState{RoomID: rr.RoomID, Open: rr.Status == "open", AnchorID: rr.AnchorID, OpenedAt: rr.OpenedMs, Ver: rr.Ver,
		Title: rr.Title, Category: rr.Category, CoverURL: rr.CoverURL}
}

func (rr roomRow) room() Room {
	return Room{RoomID: rr.RoomID, Status: rr.Status, AnchorID: rr.AnchorID, Title: rr.Title, Category: rr.Category,
		CoverURL: rr.CoverURL, OpenedAt: rr.OpenedMs, Version: rr.Ver}
}

func noRoom(room uint64, field string) *refusal.Error {
	return refusal.New(refusal.NotFound, field, "no room %d", room)
}

// view adds what who sees of room: the nickname and the stream URLs.
func (r *Registry) view(ctx context.Context, who Caller, room Room) RoomView {
	v := RoomView{Room: room, AnchorNickname: r.nickname(ctx, room.AnchorID)}
	now := r.cfg.Now()
	stream := StreamName(room.RoomID)
	v.PlayURL = r.cfg.Streams.url(r.cfg.Streams.Play, stream, now)
	if who.UserID == room.AnchorID {
		v.PushURL = r.cfg.Streams.url(r.cfg.Streams.Push, stream, now)
	}
	return v
}

func checkRoomInput(in *RoomInput) *refusal.Error {
	in.Title = strings.TrimSpace(in.Title)
	in.Category = strings.TrimSpace(in.Category)
	in.CoverURL = strings.TrimSpace(in.CoverURL)
	switch n := utf8.RuneCountInString(in.Title); {
	case !utf8.ValidString(in.Title):
		return refusal.Invalidf("title", "is not valid UTF-8")
	case n == 0:
		return refusal.Invalidf("title", "is required and must not be blank")
	case n > maxTitle:
		return refusal.Invalidf("title", "has %d characters; at most %d", n, maxTitle)
	}
	if in.Category == "" || len(in.Category) > maxCategory || strings.Trim(in.Category, "abcdefghijklmnopqrstuvwxyz0123456789_-") != "" {
		return refusal.Invalidf("category", "must be 1..%d characters of a-z, 0-9, _ and -", maxCategory)
	}
	if in.CoverURL != "" {
		u, err := url.Parse(in.CoverURL)
		if len(in.CoverURL) > maxCoverURL || err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return refusal.Invalidf("cover_url", "must be an http(s) URL of at most %d bytes", maxCoverURL)
		}
	}
	return nil
}

// CreateRoom creates who's room (who must be an approved anchor): one per
// anchor, its id from the "rooms" sequence, closed. created is false when
// the anchor had a room already: that room is returned unchanged.
func (r *Registry) CreateRoom(ctx context.Context, who Caller, in RoomInput) (v RoomView, created bool, err error) {
	if e := checkRoomInput(&in); e != nil {
		return RoomView{}, false, r.b.reject("room_invalid", e)
	}
	status, err := r.anchorStatus(ctx, who.UserID)
	if err != nil {
		return RoomView{}, false, err
	}
	if status != AnchorApproved {
		return RoomView{}, false, r.notApproved(who.UserID, status)
	}
	row, err := r.roomOfAnchor(ctx, who.UserID)
	if err == nil {
		return r.view(ctx, who, row.room()), false, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return RoomView{}, false, r.pgFail("read room", err)
	}
	id, err := r.ids.Next(ctx)
	if err != nil {
		return RoomView{}, false, r.pgFail("allocate room id", err)
	}
	// One statement: the anchor is still approved, and UNIQUE (anchor_id)
	// makes a concurrent create of the same anchor insert nothing.
	err = r.db.QueryRow(ctx, `INSERT INTO rooms (room_id, anchor_id, title, category, cover_url, created_ms)
		SELECT $1, $2, $3, $4, $5, $6 WHERE EXISTS (SELECT 1 FROM anchors WHERE user_id = $2 AND status = 'approved')
		ON CONFLICT (anchor_id) DO NOTHING RETURNING `+roomColumns, id, int64(who.UserID), in.Title, in.Category, in.CoverURL, r.nowMs()).
		Scan(&row.RoomID, &row.AnchorID, &row.Title, &row.Category, &row.CoverURL, &row.Status, &row.OpenedMs, &row.Ver)
	switch {
	case errors.Is(err, pgx.ErrNoRows): // a concurrent create won, or a revoke came between
		if row, err = r.roomOfAnchor(ctx, who.UserID); errors.Is(err, pgx.ErrNoRows) {
			return RoomView{}, false, r.notApproved(who.UserID, AnchorRevoked)
		}
		if err != nil {
			return RoomView{}, false, r.pgFail("read room", err)
		}
		return r.view(ctx, who, row.room()), false, nil
	case err != nil:
		return RoomView{}, false, r.pgFail("create room", err)
	}
	r.log.Info("room created", "room", row.RoomID, "anchor", who.UserID)
	room, err := r.b.putRoom(ctx, row.state(), quietly)
	if err != nil {
		return RoomView{}, false, r.hotFail(row.RoomID, err)
	}
	return r.view(ctx, who, room), true, nil
}

// anchorStatus is uid's anchor status, "" if they never applied.
func (r *Registry) anchorStatus(ctx context.Context, uid uint64) (string, error) {
	var status string
	err := r.db.QueryRow(ctx, `SELECT status FROM anchors WHERE user_id = $1`, int64(uid)).Scan(&status)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", r.pgFail("read anchor", err)
	}
	return status, nil
}

func (r *Registry) notApproved(uid uint64, status string) *refusal.Error {
	if status == "" {
		status = "not an anchor"
	}
	return r.b.reject("not_anchor", refusal.New(refusal.Forbidden, "", "user %d is not an approved anchor (%s)", uid, status))
}

func (r *Registry) roomOfAnchor(ctx context.Context, uid uint64) (roomRow, error) {
	var row roomRow
	err := r.db.QueryRow(ctx, selectRoom+` WHERE r.anchor_id = $1`, int64(uid)).
		Scan(&row.RoomID, &row.AnchorID, &row.Title, &row.Category, &row.CoverURL, &row.Status, &row.OpenedMs, &row.Ver)
	return row, err
}

// SetOpen opens or closes room for who: its anchor while approved, or an
// admin (who may close any room but open only an approved anchor's).
// Nobody else (Forbidden); a room that does not exist is NotFound.
func (r *Registry) SetOpen(ctx context.Context, room uint64, open bool, who Caller) (RoomView, error) {
	op, want := "close", "closed"
	if open {
		op, want = "open", "open"
	}
	var row roomRow
	err := r.db.Tx(ctx, func(tx pgx.Tx) error {
		var anchorStatus string
		err := tx.QueryRow(ctx, `SELECT r.room_id, r.anchor_id, r.title, r.category, r.cover_url, r.status, r.opened_ms, r.ver, a.status
			FROM rooms r JOIN anchors a ON a.user_id = r.anchor_id WHERE r.room_id = $1 FOR UPDATE OF r`, int64(room)).
			Scan(&row.RoomID, &row.AnchorID, &row.Title, &row.Category, &row.CoverURL, &row.Status, &row.OpenedMs, &row.Ver, &anchorStatus)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return r.b.reject("no_room", noRoom(room, ""))
		case err != nil:
			return err
		case !who.Admin && who.UserID != row.AnchorID:
			return r.b.reject("not_anchor", refusal.New(refusal.Forbidden, "", "only room %d's anchor or an admin may %s it", room, op))
		case !who.Admin && anchorStatus != AnchorApproved:
			return r.notApproved(who.UserID, anchorStatus)
		case open && anchorStatus != AnchorApproved:
			return r.b.reject("anchor_revoked", refusal.New(refusal.Conflict, "", "room %d's anchor %d is %s; approve them first", room, row.AnchorID, anchorStatus))
		case row.Status == want:
			return nil // nothing to change; the hot copy is written again below
		}
		row.Status = want
		if open {
			row.OpenedMs = r.nowMs()
		}
		return tx.QueryRow(ctx, `UPDATE rooms SET status = $2, opened_ms = $3, ver = ver + 1 WHERE room_id = $1 RETURNING ver`,
			int64(room), want, row.OpenedMs).Scan(&row.Ver)
	})
	if err != nil {
		return RoomView{}, r.pgFail(op+" room", err)
	}
	got, err := r.b.PutRoom(ctx, row.state())
	if err != nil {
		return RoomView{}, r.hotFail(room, err)
	}
	if got.Status == want {
		r.log.Info("room "+want, "room", room, "by", who.UserID, "admin", who.Admin, "version", got.Version)
	}
	if cur, err := r.b.GetRoom(ctx, room); err == nil {
		got = cur
	}
	return r.view(ctx, who, got), nil
}

// GetRoom returns a room as who sees it: from the hot copy, or from
// PostgreSQL when Redis has none (then copied back to Redis).
func (r *Registry) GetRoom(ctx context.Context, who Caller, room uint64) (RoomView, error) {
	hot, err := r.b.GetRoom(ctx, room)
	if err == nil {
		return r.view(ctx, who, hot), nil
	}
	var row roomRow
	err = r.db.QueryRow(ctx, selectRoom+` WHERE r.room_id = $1`, int64(room)).
		Scan(&row.RoomID, &row.AnchorID, &row.Title, &row.Category, &row.CoverURL, &row.Status, &row.OpenedMs, &row.Ver)
	if errors.Is(err, pgx.ErrNoRows) {
		return RoomView{}, r.b.reject("no_room", noRoom(room, ""))
	}
	if err != nil {
		return RoomView{}, r.pgFail("read room", err)
	}
	if _, err := r.b.putRoom(ctx, row.state(), quietly); err != nil {
		r.dirty.Store(true) // logged and counted by putRoom; the answer is PostgreSQL's
	}
	return r.view(ctx, who, row.room()), nil
}

// ListRooms pages rooms: open ones (live) from the hot copy, newest
// opening first; all of them from PostgreSQL, newest room first. cursor
// is what the previous page returned ("" = the first page); next is ""
// after the last page.
func (r *Registry) ListRooms(ctx context.Context, who Caller, live bool, limit int, cursor string) (items []RoomView, next string, err error) {
	var rooms []Room
	if live {
		c, e := decodeCursor(cursor, "l")
		if e != nil {
			return nil, "", e
		}
		var after *LiveCursor
		if cursor != "" {
			after = &LiveCursor{OpenedAt: int64(c[0]), RoomID: c[1]}
		}
		var nc *LiveCursor
		if rooms, nc, err = r.b.LiveRooms(ctx, after, limit); err != nil {
			return nil, "", err
		}
		if nc != nil {
			next = encodeCursor("l", nc.OpenedAt, int64(nc.RoomID))
		}
	} else {
		c, e := decodeCursor(cursor, "a")
		if e != nil {
			return nil, "", e
		}
		before := int64(c[0])
		if cursor == "" {
			before = maxID
		}
		rows, err := pgdb.Collect(ctx, r.db, pgx.RowToStructByPos[roomRow], selectRoom+` WHERE r.room_id < $1 ORDER BY r.room_id DESC LIMIT $2`, before, limit+1)
		if err != nil {
			return nil, "", r.pgFail("list rooms", err)
		}
		if len(rows) > limit {
			rows = rows[:limit]
			next = encodeCursor("a", int64(rows[limit-1].RoomID))
		}
		rooms = r.withHot(ctx, rows)
	}
	items = make([]RoomView, len(rooms))
	for i, room := range rooms {
		items[i] = r.view(ctx, who, room)
	}
	return items, next, nil
}

const maxID = 1<<63 - 1

// withHot returns rows with what only Redis knows (head-count, PK); a
// failed read leaves them without it (logged and counted by rooms).
func (r *Registry) withHot(ctx context.Context, rows []roomRow) []Room {
	ids := make([]uint64, len(rows))
	for i, row := range rows {
		ids[i] = row.RoomID
	}
	hot := map[uint64]Room{}
	if hs, err := r.b.rooms(ctx, ids); err == nil {
		for _, h := range hs {
			hot[h.RoomID] = h
		}
	}
	out := make([]Room, len(rows))
	for i, row := range rows {
		out[i] = row.room()
		if h, ok := hot[row.RoomID]; ok {
			out[i].Online, out[i].PKID = h.Online, h.PKID
		}
	}
	return out
}

// AnchorOf says whether uid is an approved anchor and which room is
// theirs (0 before they create it): what GET /v1/me shows
// (api.AnchorInfo).
func (r *Registry) AnchorOf(ctx context.Context, uid uint64) (isAnchor bool, roomID uint64, err error) {
	status, err := r.anchorStatus(ctx, uid)
	if err != nil || status != "approved" {
		return false, 0, err
	}
	row, err := r.roomOfAnchor(ctx, uid)
	if errors.Is(err, pgx.ErrNoRows) {
		return true, 0, nil
	}
	if err != nil {
		return true, 0, r.pgFail("read the anchor's room", err)
	}
	return true, row.RoomID, nil
}
