package rooms

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/onair/onair/accounts"
	"github.com/onair/onair/aggregate"
	"github.com/onair/onair/internal/pgdb/pgtest"
	"github.com/onair/onair/rooms/wire"
)

// TestFramesAndRankingsNameByNickname: with accounts' Names (real
// PostgreSQL and Redis), danmaku, gift and leaderboard frames and the
// ranking name people by user_id and nickname, and no frame carries the
// phone; a user without an account is "user <id>".
func TestFramesAndRankingsNameByNickname(t *testing.T) {
	t.Parallel()
	db := pgtest.DB(t)
	var svc *accounts.Service
	w := newWorld(t, 1, func(c *Config) {
		var err error
		svc, err = accounts.New(context.Background(), accounts.Config{DB: db, Secret: []byte("s"), Redis: c.Redis, Prefix: c.Prefix, DevCodes: true})
		if err != nil {
			t.Fatal(err)
		}
		// the board's node is another one, without the hot copy: its
		// names come from PostgreSQL
		node, err := accounts.New(context.Background(), accounts.Config{DB: db, Secret: []byte("s")})
		if err != nil {
			t.Fatal(err)
		}
		c.Names = node.Names()
	})
	ctx := ctxT(t)
	code, err := svc.SendCode(ctx, "13800000077")
	if err != nil {
		t.Fatal(err)
	}
	sess, err := svc.Login(ctx, "13800000077", code)
	if err != nil {
		t.Fatal(err)
	}
	nick := "Mia"
	if _, err := svc.Update(ctx, sess.UserID, accounts.ProfileUpdate{Nickname: &nick}, w.b); err != nil {
		t.Fatal(err)
	}
	w.open(5, 8)
	mia := Caller{UserID: sess.UserID}
	if _, err := w.b.Danmaku(ctx, 5, mia, "hi", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := w.b.Gift(ctx, 5, mia, GiftInput{GiftID: 2, Value: 200}); err != nil {
		t.Fatal(err)
	}
	if err := w.b.ApplyGifts(ctx, []aggregate.Gift{gift(0, 1, 5, sess.UserID, 200, ""), gift(0, 2, 5, 77, 10, "")}); err != nil {
		t.Fatal(err)
	}
	items, _, err := w.b.Leaderboard(ctx, 5, 10)
	if err != nil || len(items) != 2 || items[0] != (Entry{UserID: sess.UserID, Nickname: "Mia", Score: 200}) || items[1].Nickname != "user 77" {
		t.Fatalf("ranking %+v, %v", items, err)
	}
	if err := w.b.publishLeaderboard(ctx, 5); err != nil {
		t.Fatal(err)
	}
	fs := w.frames(5)
	for _, typ := range []string{wire.TypeDanmaku, wire.TypeGift} {
		got := ofType(fs, typ)
		if len(got) != 1 || got[0].v["nickname"] != "Mia" || got[0].v["user_id"] != float64(sess.UserID) {
			t.Fatalf("%s frames %+v, want one naming Mia", typ, got)
		}
	}
	lb := ofType(fs, wire.TypeLeaderboard)
	if len(lb) != 1 || !strings.Contains(toJSON(t, lb[0].v), `"nickname":"Mia"`) {
		t.Fatalf("leaderboard frames %+v", lb)
	}
	for _, r := range w.records("pushes") {
		if strings.Contains(string(r.Value), "3800000077") {
			t.Fatalf("a frame carries the phone: %s", r.Value)
		}
	}
}

func toJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
