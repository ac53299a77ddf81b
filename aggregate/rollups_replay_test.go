package aggregate

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"syscall"
	"testing"
	"time"

	"github.com/onair/onair/ingest"
	"github.com/onair/onair/internal/testenv"
)

// TestRollupsExactUnderReplay SIGKILLs the aggregator at random instants
// (so partitions are replayed from their ClickHouse watermarks) while plays,
// skips and likes on radio stations flow, a third of them sent twice with
// the same client event_id as a retrying client does. Then the rollups of
// 0041 — user_daily, station_daily, user_affinity (joined with the
// catalog) — must equal what the test computes from the events it sent,
// each counted once.
func TestRollupsExactUnderReplay(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 4)
	ctx := context.Background()
	// The catalog: item i has category c<i%3> and tags t<i%4>, t<(i+1)%4>.
	b, err := h.ch.PrepareBatch(ctx, "INSERT INTO "+h.db+".catalog (item_id, biz, category, tags, version)")
	if err != nil {
		t.Fatal(err)
	}
	tagsOf := func(i uint64) []string { return []string{fmt.Sprintf("t%d", i%4), fmt.Sprintf("t%d", (i+1)%4)} }
	for i := uint64(1); i <= 12; i++ {
		if err := b.Append(i, "audio", fmt.Sprintf("c%d", i%3), tagsOf(i), uint64(1)); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}

	type key struct {
		a    uint64
		kind string
	}
	type sums struct{ plays, listened, skips uint64 }
	station, user, affinity := map[key]sums{}, map[key]sums{}, map[key]sums{}
	add := func(m map[key]sums, k key, e *ingest.Event) {
		s := m[k]
		if e.Type == ingest.TypePlay {
			s.plays++
			s.listened += e.ListenedMs
		} else if e.Type == ingest.TypeSkip {
			s.skips++
		}
		m[k] = s
	}
	count := func(e *ingest.Event) {
		if e.Type == ingest.TypeLike {
			if _, ok := user[key{e.UserID, ""}]; !ok {
				user[key{e.UserID, ""}] = sums{} // a row of zeros in user_daily
			}
			return
		}
		add(station, key{e.StationID, ""}, e)
		add(user, key{e.UserID, ""}, e)
		add(affinity, key{e.UserID, "category:" + fmt.Sprintf("c%d", e.ItemID%3)}, e)
		for _, tag := range tagsOf(e.ItemID) {
			add(affinity, key{e.UserID, "tag:" + tag}, e)
		}
	}

	sent := 0
	done := make(chan struct{})
	base := time.Now().Add(-time.Hour).UnixMilli()
	go func() {
		defer close(done)
		rng := rand.New(rand.NewPCG(3, 5))
		var retries []ingest.Event
		for round := range 40 {
			evs := make([]ingest.Event, 0, 150)
			for i := range 100 {
				e := ingest.Event{Type: []ingest.Type{ingest.TypePlay, ingest.TypeSkip, ingest.TypeLike}[rng.IntN(3)],
					UserID: uint64(1 + rng.IntN(20)), Biz: ingest.BizAudio, ItemID: uint64(1 + rng.IntN(12)),
					StationID: uint64(1 + rng.IntN(3)), TS: base + int64(round*1000+i)}
				if e.Type == ingest.TypePlay {
					e.ListenedMs = uint64(1000 + rng.IntN(100_000))
				}
				if i%3 == 0 {
					e.EventID = fmt.Sprintf("r%d-%d", round, i)
					retries = append(retries, e)
				}
				count(&e)
				sent++
				evs = append(evs, e)
			}
			// last round's client-id events again: the retries of a client
			// that did not see its 202
			evs = append(evs, retries[:len(retries)-34]...)
			retries = retries[len(retries)-34:]
			h.produce(evs...)
			time.Sleep(20 * time.Millisecond) // pacing the producer, not synchronisation
		}
	}()
	kills := 0
	rng := rand.New(rand.NewPCG(7, 9))
	for {
		cmd := h.startChild()
		select {
		case <-done:
		case <-time.After(time.Duration(100+rng.IntN(300)) * time.Millisecond):
			_ = cmd.Process.Signal(syscall.SIGKILL)
			_ = cmd.Wait()
			kills++
			continue
		}
		testenv.Wait(t, 60*time.Second, func() bool { return h.totalEvents() >= uint64(sent) },
			"ClickHouse to hold %d events after %d kills (has %d)", sent, kills, h.totalEvents())
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
		break
	}
	if kills < 2 {
		t.Fatalf("only %d kills happened; the test did not exercise replays", kills)
	}
	if n := h.totalEvents(); n != uint64(sent) {
		t.Fatalf("events holds %d rows, want the %d sent once each", n, sent)
	}

	read := func(q string) map[key]sums {
		rows, err := h.ch.Query(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		out := map[key]sums{}
		for rows.Next() {
			var k key
			var s sums
			if err := rows.Scan(&k.a, &k.kind, &s.plays, &s.listened, &s.skips); err != nil {
				t.Fatal(err)
			}
			out[k] = s
		}
		return out
	}
	// The views write after events takes a block, inside the same INSERT:
	// a rollup may trail events by the INSERT still running.
	check := func(name, q string, want map[key]sums) {
		t.Helper()
		var got map[key]sums
		deadline := time.Now().Add(30 * time.Second)
		for got = read(q); !reflect.DeepEqual(got, want) && time.Now().Before(deadline); got = read(q) {
			time.Sleep(50 * time.Millisecond) // polling with a deadline
		}
		if !reflect.DeepEqual(got, want) {
			for k, w := range want {
				if got[k] != w {
					t.Errorf("%s %v: rollup %+v, sent %+v", name, k, got[k], w)
				}
			}
			t.Fatalf("%s differs from the events sent (%d keys rolled up, %d sent)", name, len(got), len(want))
		}
	}
	check("station_daily", "SELECT station_id, '', sum(plays), sum(listened_ms), sum(skips) FROM "+h.db+".station_daily GROUP BY station_id", station)
	check("user_daily", "SELECT user_id, '', sum(plays), sum(listened_ms), sum(skips) FROM (SELECT user_id, plays, listened_ms, "+
		"toUInt64(0) AS skips FROM "+h.db+".user_daily UNION ALL SELECT user_id, 0, 0, skips FROM "+h.db+".user_item_daily) GROUP BY user_id", user)
	check("user_affinity", "SELECT user_id, concat(toString(kind), ':', key), sum(plays), sum(listened_ms), sum(skips) FROM "+h.db+
		".user_affinity GROUP BY user_id, kind, key", affinity)
	t.Logf("%d events (+ retries), %d kills: rollups exact", sent, kills)
}
