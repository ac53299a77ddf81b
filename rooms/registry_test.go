package rooms

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/onair/onair/internal/pgdb/pgtest"
	"github.com/onair/onair/internal/refusal"
)

// notices is a Notifier keeping what it was asked to deliver.
type notices struct {
	mu  sync.Mutex
	got map[uint64][]any
}

func (n *notices) Notify(_ context.Context, uid uint64, f any) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.got[uid] = append(n.got[uid], f)
	return nil
}

type regWorld struct {
	*world
	reg   *Registry
	clock atomic.Int64 // ms added to the registry's clock
	sent  *notices
}

func newRegWorld(t *testing.T, tune func(*RegistryConfig)) *regWorld {
	t.Helper()
	rw := &regWorld{world: newWorld(t, 2, nil), sent: &notices{got: map[uint64][]any{}}}
	cfg := RegistryConfig{DB: pgtest.DB(t), Board: rw.b, Notifier: rw.sent,
		Streams: StreamURLs{Push: "rtmp://media/live/{stream}", Play: "http://media/live/{stream}.flv?x=1", Key: []byte("k3y"), TTL: time.Minute},
		Now:     func() time.Time { return time.Now().Add(time.Duration(rw.clock.Load()) * time.Millisecond) }}
	if tune != nil {
		tune(&cfg)
	}
	var err error
	if rw.reg, err = NewRegistry(ctxT(t), cfg); err != nil {
		t.Fatal(err)
	}
	return rw
}

func kindOf(err error) refusal.Kind {
	if e, ok := refusal.As(err); ok {
		return e.Kind
	}
	return 0
}

var admin = Caller{UserID: 1, Admin: true}

// anchor makes uid an approved anchor with an open room and returns it.
func (rw *regWorld) anchor(uid uint64) uint64 {
	rw.t.Helper()
	ctx := ctxT(rw.t)
	if _, err := rw.reg.Apply(ctx, uid, "I sing"); err != nil {
		rw.t.Fatal(err)
	}
	if _, err := rw.reg.Approve(ctx, admin, uid); err != nil {
		rw.t.Fatal(err)
	}
	v, _, err := rw.reg.CreateRoom(ctx, Caller{UserID: uid}, RoomInput{Title: "room of " + strconv.FormatUint(uid, 10), Category: "music"})
	if err != nil {
		rw.t.Fatal(err)
	}
	if _, err := rw.reg.SetOpen(ctx, v.RoomID, true, Caller{UserID: uid}); err != nil {
		rw.t.Fatal(err)
	}
	return v.RoomID
}

func TestAnchorAndRoomRules(t *testing.T) {
	t.Parallel()
	rw := newRegWorld(t, nil)
	ctx := ctxT(t)
	mia, bob, eve := Caller{UserID: 100}, Caller{UserID: 200}, Caller{UserID: 300}
	in := RoomInput{Title: "Mia sings", Category: "music", CoverURL: "https://img/x.png"}
	if _, _, err := rw.reg.CreateRoom(ctx, mia, in); kindOf(err) != refusal.Forbidden {
		t.Fatalf("a non-anchor created a room: %v", err)
	}
	if _, err := rw.reg.Apply(ctx, 100, "  "); kindOf(err) != refusal.Invalid {
		t.Fatalf("blank reason: %v", err)
	}
	a, err := rw.reg.Apply(ctx, 100, "I sing")
	if err != nil || a.Status != AnchorPending {
		t.Fatalf("apply: %+v, %v", a, err)
	}
	if a, err := rw.reg.Apply(ctx, 100, "again"); err != nil || a.Status != AnchorPending || a.Reason != "I sing" {
		t.Fatalf("apply again while pending: %+v, %v", a, err)
	}
	if _, _, err := rw.reg.CreateRoom(ctx, mia, in); kindOf(err) != refusal.Forbidden {
		t.Fatalf("a pending anchor created a room: %v", err)
	}
	if _, err := rw.reg.Approve(ctx, admin, 999); kindOf(err) != refusal.NotFound {
		t.Fatalf("approve a user who never applied: %v", err)
	}
	if _, err := rw.reg.Approve(ctx, admin, 100); err != nil {
		t.Fatal(err)
	}
	// One room per anchor, even when created concurrently.
	var wg sync.WaitGroup
	ids := make([]uint64, 8)
	created := atomic.Int32{}
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, c, err := rw.reg.CreateRoom(ctx, mia, in)
			if err != nil {
				t.Error(err)
			}
			if c {
				created.Add(1)
			}
			ids[i] = v.RoomID
		}()
	}
	wg.Wait()
	for _, id := range ids {
		if id != ids[0] || id == 0 {
			t.Fatalf("concurrent creates gave rooms %v, want one", ids)
		}
	}
	if created.Load() != 1 {
		t.Fatalf("%d creates reported created, want 1", created.Load())
	}
	room := ids[0]
	if _, err := rw.reg.SetOpen(ctx, room+1000, true, mia); kindOf(err) != refusal.NotFound {
		t.Fatalf("open of a room that does not exist: %v", err)
	}
	if _, err := rw.reg.SetOpen(ctx, room, true, eve); kindOf(err) != refusal.Forbidden {
		t.Fatalf("a viewer opened the room: %v", err)
	}
	rw.anchor(200) // bob: an approved anchor of another room
	if _, err := rw.reg.SetOpen(ctx, room, true, bob); kindOf(err) != refusal.Forbidden {
		t.Fatalf("another anchor opened my room: %v", err)
	}
	v, err := rw.reg.SetOpen(ctx, room, true, mia)
	if err != nil || v.Status != "open" || v.AnchorID != 100 || v.Title != "Mia sings" || v.PushURL == "" || v.PlayURL == "" {
		t.Fatalf("open by its anchor: %+v, %v", v, err)
	}
	if v, err := rw.reg.GetRoom(ctx, eve, room); err != nil || v.PushURL != "" || v.PlayURL == "" {
		t.Fatalf("a viewer's view: %+v, %v", v, err)
	}
	// Revoking closes the room; the revoked anchor can no longer open it.
	if _, err := rw.reg.Revoke(ctx, admin, 100); err != nil {
		t.Fatal(err)
	}
	if hot, err := rw.b.GetRoom(ctx, room); err != nil || hot.Status != "closed" {
		t.Fatalf("after revoke the hot copy is %+v, %v; want closed", hot, err)
	}
	if _, err := rw.reg.SetOpen(ctx, room, true, mia); kindOf(err) != refusal.Forbidden {
		t.Fatalf("a revoked anchor opened their room: %v", err)
	}
	if _, err := rw.reg.SetOpen(ctx, room, true, admin); kindOf(err) != refusal.Conflict {
		t.Fatalf("an admin opened a revoked anchor's room: %v", err)
	}
	if a, err := rw.reg.Apply(ctx, 100, "sorry"); err != nil || a.Status != AnchorPending {
		t.Fatalf("a revoked anchor re-applies: %+v, %v", a, err)
	}
	// Admin list by status, paged.
	for uid := uint64(400); uid < 405; uid++ {
		rw.reg.Apply(ctx, uid, "me too")
	}
	var seen []uint64
	cursor := ""
	for {
		items, next, err := rw.reg.Anchors(ctx, AnchorPending, 2, cursor)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range items {
			seen = append(seen, a.UserID)
		}
		if next == "" {
			break
		}
		cursor = next
	}
	if len(seen) != 6 || seen[0] != 100 || seen[5] != 404 {
		t.Fatalf("pending anchors %v, want 100 and 400..404", seen)
	}
	if _, _, err := rw.reg.Anchors(ctx, AnchorPending, 2, "bogus!"); kindOf(err) != refusal.Invalid {
		t.Fatalf("a malformed cursor: %v", err)
	}
}

func TestPKInvitation(t *testing.T) {
	t.Parallel()
	rw := newRegWorld(t, nil)
	ctx := ctxT(t)
	a, b, c := rw.anchor(10), rw.anchor(20), rw.anchor(30)
	if _, err := rw.reg.InvitePK(ctx, Caller{UserID: 20}, a, b); kindOf(err) != refusal.Forbidden {
		t.Fatalf("room_b's anchor invited in room_a's name: %v", err)
	}
	if _, err := rw.reg.InvitePK(ctx, Caller{UserID: 10}, a, a); kindOf(err) != refusal.Invalid {
		t.Fatalf("a PK with one's own room: %v", err)
	}
	p, err := rw.reg.InvitePK(ctx, Caller{UserID: 10}, a, b)
	if err != nil || p.Status != PKInvited {
		t.Fatalf("invite: %+v, %v", p, err)
	}
	if f, ok := rw.sent.got[20]; !ok || f[0].(PKInviteFrame).PKID != p.PKID || f[0].(PKInviteFrame).Type != "pk_invite" {
		t.Fatalf("room_b's anchor got %+v, want the pk_invite", rw.sent.got)
	}
	for _, who := range []Caller{{UserID: 10}, {UserID: 30}, admin} {
		if _, err := rw.reg.AnswerPK(ctx, who, p.PKID, true); kindOf(err) != refusal.Forbidden {
			t.Fatalf("%+v accepted room_b's invitation: %v", who, err)
		}
	}
	got, err := rw.reg.AnswerPK(ctx, Caller{UserID: 20}, p.PKID, true)
	if err != nil || got.Status != PKRunning || got.ScoreA != 50 || got.ScoreB != 50 {
		t.Fatalf("accept: %+v, %v", got, err)
	}
	if _, err := rw.reg.AnswerPK(ctx, Caller{UserID: 20}, p.PKID, true); kindOf(err) != refusal.Conflict {
		t.Fatalf("accepted twice: %v", err)
	}
	if _, err := rw.reg.InvitePK(ctx, Caller{UserID: 30}, c, a); kindOf(err) != refusal.Conflict {
		t.Fatalf("invited a room in a running PK: %v", err)
	}
	live, err := rw.reg.LivePKs(ctx, 10)
	if err != nil || len(live) != 1 || live[0].PKID != p.PKID {
		t.Fatalf("live PKs %+v, %v", live, err)
	}
	// An invitation not answered within 30 s expires.
	q, err := rw.reg.InvitePK(ctx, Caller{UserID: 30}, c, a)
	if kindOf(err) != refusal.Conflict {
		t.Fatalf("invite into a busy room: %+v, %v", q, err)
	}
	d := rw.anchor(40)
	q, err = rw.reg.InvitePK(ctx, Caller{UserID: 30}, c, d)
	if err != nil {
		t.Fatal(err)
	}
	rw.clock.Add(29_900)
	if v, _ := rw.reg.GetPK(ctx, q.PKID); v.Status != PKInvited {
		t.Fatalf("at 29.9 s the invitation is %s", v.Status)
	}
	rw.clock.Add(100)
	if _, err := rw.reg.AnswerPK(ctx, Caller{UserID: 40}, q.PKID, true); kindOf(err) != refusal.Conflict {
		t.Fatalf("accepted at 30 s: %v", err)
	}
	if v, _ := rw.reg.GetPK(ctx, q.PKID); v.Status != PKExpired {
		t.Fatalf("after 30 s the invitation is %s, want expired", v.Status)
	}
	rw.clock.Store(0)
	q, _ = rw.reg.InvitePK(ctx, Caller{UserID: 30}, c, d)
	if v, err := rw.reg.AnswerPK(ctx, Caller{UserID: 40}, q.PKID, false); err != nil || v.Status != PKDeclined {
		t.Fatalf("decline: %+v, %v", v, err)
	}
	// Only the running PK is live (not the expired, declined or invited ones).
	rw.reg.InvitePK(ctx, Caller{UserID: 30}, c, d)
	live, err = rw.reg.LivePKs(ctx, 10)
	if err != nil || len(live) != 1 || live[0].PKID != p.PKID || live[0].Status != PKRunning {
		t.Fatalf("live PKs at the end %+v, %v", live, err)
	}
}

// TestInviteTTLConfigurable: a short InviteTTL expires invitations sooner.
func TestInviteTTLConfigurable(t *testing.T) {
	t.Parallel()
	rw := newRegWorld(t, func(c *RegistryConfig) { c.InviteTTL = 50 * time.Millisecond })
	ctx := ctxT(t)
	a, b := rw.anchor(10), rw.anchor(20)
	p, err := rw.reg.InvitePK(ctx, Caller{UserID: 10}, a, b)
	if err != nil || p.ExpiresAt-p.InvitedAt != 50 {
		t.Fatalf("invite: %+v, %v", p, err)
	}
	rw.clock.Add(50)
	if _, err := rw.reg.AnswerPK(ctx, Caller{UserID: 20}, p.PKID, true); kindOf(err) != refusal.Conflict {
		t.Fatalf("accepted after the TTL: %v", err)
	}
}

// TestRegistryRebuildsTheHotCopy: after the room keys are lost, one
// reconcile puts every open room (with its anchor) and running PK back.
func TestRegistryRebuildsTheHotCopy(t *testing.T) {
	t.Parallel()
	rw := newRegWorld(t, nil)
	ctx := ctxT(t)
	rw.reg.reconcile(ctx) // sets the sentinel
	a, b, c := rw.anchor(10), rw.anchor(20), rw.anchor(30)
	if _, err := rw.reg.SetOpen(ctx, c, false, Caller{UserID: 30}); err != nil {
		t.Fatal(err)
	}
	p, _ := rw.reg.InvitePK(ctx, Caller{UserID: 10}, a, b)
	if _, err := rw.reg.AnswerPK(ctx, Caller{UserID: 20}, p.PKID, true); err != nil {
		t.Fatal(err)
	}
	keys, _ := rw.rdb.Keys(ctx, rw.prefix+"*").Result()
	if err := rw.rdb.Del(ctx, keys...).Err(); err != nil { // this test's share of a FLUSHALL
		t.Fatal(err)
	}
	if _, err := rw.b.GetRoom(ctx, a); kindOf(err) != refusal.NotFound {
		t.Fatalf("room %d survived the loss: %v", a, err)
	}
	rw.reg.reconcile(ctx)
	for _, room := range []uint64{a, b} {
		r, err := rw.b.GetRoom(ctx, room)
		if err != nil || r.Status != "open" || r.PKID != p.PKID || r.AnchorID == 0 {
			t.Fatalf("room %d after the rebuild: %+v, %v", room, r, err)
		}
	}
	if _, err := rw.b.openRoom(ctx, c); kindOf(err) != refusal.NotFound {
		t.Fatalf("closed room %d after the rebuild: %v (only open rooms are rebuilt; GetRoom reads through)", c, err)
	}
	if v, err := rw.reg.GetRoom(ctx, Caller{}, c); err != nil || v.Status != "closed" {
		t.Fatalf("closed room %d read through: %+v, %v", c, v, err)
	}
	if v, err := rw.reg.GetPK(ctx, p.PKID); err != nil || v.Status != PKRunning || v.ScoreA != 50 {
		t.Fatalf("pk after the rebuild: %+v, %v", v, err)
	}
}

// TestStreamURLsSigned recomputes a URL's signature from the documented
// rule, and Verify refuses an expired or tampered one.
func TestStreamURLsSigned(t *testing.T) {
	key := []byte("k3y")
	now := time.Unix(1_700_000_000, 0)
	s := StreamURLs{Play: "http://media/live/{stream}.flv?x=1", Key: key, TTL: time.Minute}
	raw := s.url(s.Play, StreamName(5), now)
	u, err := url.Parse(raw)
	if err != nil || u.Path != "/live/room5.flv" || u.Query().Get("x") != "1" {
		t.Fatalf("url %q: %v", raw, err)
	}
	exp := u.Query().Get("expires")
	m := hmac.New(sha256.New, key)
	m.Write([]byte("room5" + exp))
	if want := hex.EncodeToString(m.Sum(nil)); u.Query().Get("sign") != want || exp != strconv.FormatInt(now.Add(time.Minute).Unix(), 10) {
		t.Fatalf("url %q: want expires %d and sign %s", raw, now.Add(time.Minute).Unix(), want)
	}
	if err := Verify(key, "room5", raw, now); err != nil {
		t.Fatalf("verify: %v", err)
	}
	if err := Verify(key, "room5", raw, now.Add(61*time.Second)); !errors.Is(err, ErrStreamExpired) {
		t.Fatalf("verify an expired url: %v", err)
	}
	q := u.Query()
	q.Set("expires", strconv.FormatInt(now.Add(time.Hour).Unix(), 10))
	u.RawQuery = q.Encode()
	if err := Verify(key, "room5", u.String(), now); !errors.Is(err, ErrStreamSign) {
		t.Fatalf("verify a url with a later expires: %v", err)
	}
	if err := Verify(key, "room6", raw, now); !errors.Is(err, ErrStreamSign) {
		t.Fatalf("verify another room's url: %v", err)
	}
}
