package rooms

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/onair/onair/aggregate"
	"github.com/onair/onair/ingest"
	"github.com/onair/onair/internal/testenv"
	"github.com/onair/onair/rooms/wire"
)

func gift(p int32, off int64, room, user, value uint64, clientID string) aggregate.Gift {
	ev := ingest.Event{Type: ingest.TypeGift, UserID: user, RoomID: room, AnchorID: 8, GiftID: 1, Value: value,
		EventID: clientID, ServerID: clientID == ""}
	if clientID == "" {
		ev.EventID = fmt.Sprintf("s%d-%d", p, off)
	}
	return aggregate.Gift{Partition: p, Offset: off, Appended: time.Now(), Event: ev}
}

// TestApplyGiftsCountsEachRecordOnce replays random prefixes of a gift
// stream the way the aggregator does after a crash (every partition
// resumes from some earlier offset and sends everything after it again)
// and retries some gifts as a client would (same event_id, a later
// record): the ranking must equal the model, where every original gift
// counts once.
func TestApplyGiftsCountsEachRecordOnce(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 1, nil)
	ctx := ctxT(t)
	rng := rand.New(rand.NewPCG(3, 4))
	const parts = 3
	var stream [parts][]aggregate.Gift
	want := map[uint64]map[uint64]uint64{}
	for p := range int32(parts) {
		for off := range int64(300) {
			room, user, value := uint64(1+rng.IntN(3)), uint64(1+rng.IntN(20)), uint64(1+rng.IntN(500))
			id := ""
			if rng.IntN(3) == 0 {
				id = fmt.Sprintf("c%d-%d", p, off)
			}
			if n := len(stream[p]); n > 0 && rng.IntN(10) == 0 && !stream[p][n-1].Event.ServerID {
				prev := stream[p][n-1] // a client retry of the previous gift
				stream[p] = append(stream[p], gift(p, off, prev.Event.RoomID, prev.Event.UserID, prev.Event.Value, prev.Event.EventID))
				continue
			}
			stream[p] = append(stream[p], gift(p, off, room, user, value, id))
			if want[room] == nil {
				want[room] = map[uint64]uint64{}
			}
			want[room][user] += value
		}
	}
	// Deliver in batches; after some batches, "crash": every partition
	// goes back to a random earlier offset.
	var next [parts]int
	for done := false; !done; {
		done = true
		var batch []aggregate.Gift
		for p := range parts {
			end := min(next[p]+1+rng.IntN(40), len(stream[p]))
			batch = append(batch, stream[p][next[p]:end]...)
			next[p] = end
			if end < len(stream[p]) {
				done = false
			}
		}
		if err := w.b.ApplyGifts(ctx, batch); err != nil {
			t.Fatal(err)
		}
		if rng.IntN(3) == 0 {
			for p := range parts {
				next[p] = rng.IntN(next[p] + 1)
			}
			done = false
		}
	}
	for room, users := range want {
		got := w.board(room)
		if fmt.Sprint(got) != fmt.Sprint(users) {
			t.Fatalf("room %d ranking %v, want %v", room, got, users)
		}
	}
}

// TestPKBarAndWinnerOnce drives a PK with gifts and replays: the bar moves
// by value/10 points per gift toward the receiving room, the winner is
// declared when it reaches 100, both rooms get exactly one frame naming
// the winner, and nothing moves the bar afterwards.
func TestPKBarAndWinnerOnce(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 1, nil)
	ctx := ctxT(t)
	w.open(5, 50)
	w.open(6, 60)
	f, err := w.startPK(5, 6)
	if err != nil || f.ScoreA != 50 || f.ScoreB != 50 {
		t.Fatalf("start: %+v, %v", f, err)
	}
	if _, err := w.startPK(6, 7); err == nil {
		t.Fatal("room 6 joined a second PK")
	}
	step := func(gs ...aggregate.Gift) PKFrame {
		t.Helper()
		if err := w.b.ApplyGifts(ctx, gs); err != nil {
			t.Fatal(err)
		}
		pk, err := w.b.PK(ctx, f.PKID)
		if err != nil {
			t.Fatal(err)
		}
		return pk
	}
	g1 := gift(0, 1, 5, 1, 200, "")
	if pk := step(g1); pk.ScoreA != 70 || pk.ScoreB != 30 {
		t.Fatalf("after 200 to room 5: %+v, want 70:30", pk)
	}
	if pk := step(g1); pk.ScoreA != 70 {
		t.Fatalf("a replay moved the bar: %+v", pk)
	}
	if pk := step(gift(1, 1, 6, 2, 100, "")); pk.ScoreA != 60 {
		t.Fatalf("after 100 to room 6: %+v, want 60:40", pk)
	}
	pk := step(gift(0, 2, 5, 1, 300, ""), gift(0, 3, 5, 1, 100, ""))
	if pk.Winner != 5 || pk.ScoreA != 100 {
		t.Fatalf("after reaching 100: %+v, want winner 5", pk)
	}
	if pk := step(gift(1, 2, 6, 2, 900, ""), gift(0, 2, 5, 1, 300, "")); pk.Winner != 5 || pk.ScoreA != 100 {
		t.Fatalf("gifts after the win moved the PK: %+v", pk)
	}
	for _, room := range []uint64{5, 6} {
		won := 0
		for _, fr := range ofType(w.frames(room), wire.TypePK) {
			if fr.v["winner"] != float64(0) {
				won++
			}
		}
		if won != 1 {
			t.Fatalf("room %d got %d pk frames with a winner, want 1", room, won)
		}
	}
	// The rooms are free again.
	if _, err := w.startPK(6, 5); err != nil {
		t.Fatalf("a new PK after the win: %v", err)
	}
}

// TestLeaderboardFramesOncePerSecondAcrossNodes runs two boards (two
// aggregate nodes) counting gifts of one room for ~2.5 s: together they
// publish at most one leaderboard frame per second, and the last one is
// the final state.
func TestLeaderboardFramesOncePerSecondAcrossNodes(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 1, nil)
	ctx := ctxT(t)
	other, err := New(Config{Redis: w.rdb, Prefix: w.prefix, Kafka: w.kcl})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	go w.b.Run(runCtx)
	go other.Run(runCtx)
	for i := 0; time.Since(start) < 2500*time.Millisecond; i++ {
		node := w.b
		if i%2 == 1 {
			node = other
		}
		if err := node.ApplyGifts(ctx, []aggregate.Gift{gift(int32(i%2), int64(i), 9, uint64(1+i%5), 10, "")}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond) // pacing the gifts, not synchronisation
	}
	_, ver, _ := w.b.Leaderboard(ctx, 9, 10)
	var lbs []frame
	testenv.Wait(t, 10*time.Second, func() bool {
		lbs = ofType(w.frames(9), wire.TypeLeaderboard)
		return len(lbs) > 0 && lbs[len(lbs)-1].v["version"] == float64(ver)
	}, "a leaderboard frame at version %d", ver)
	// Turns last 0.98 s (see publishLeaderboard): that is the rule.
	if limit := int(time.Since(start)/(980*time.Millisecond)) + 1; len(lbs) > limit {
		t.Fatalf("%d leaderboard frames in %s from two nodes, want at most %d", len(lbs), time.Since(start), limit)
	}
}

// TestPKScoresRoundDown: the bar is kept in tenths and each side is shown
// rounded down (docs/api.md), so 50.5:49.5 shows as 50:49, not 50:50.
func TestPKScoresRoundDown(t *testing.T) {
	f := func(bar, wantA, wantB int64) {
		t.Helper()
		got := pkFrame(5, "5-6-0", 5, 6, 1, bar, 0)
		if got.ScoreA != wantA || got.ScoreB != wantB {
			t.Fatalf("bar %d: %d:%d, want %d:%d", bar, got.ScoreA, got.ScoreB, wantA, wantB)
		}
	}
	f(500, 50, 50)
	f(505, 50, 49)
	f(495, 49, 50)
	f(1000, 100, 0)
	f(0, 0, 100)
}
