package seed

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/onair/onair/recommend"
)

// TestDemoStationsPlayAtEveryHour: the demo stations, over the demo
// catalog as PUT /v1/admin/catalog receives it (JSON), are accepted by the
// radio's validation and have a playlist at every hour of a week (station
// 1 a full first page of 20).
func TestDemoStationsPlayAtEveryHour(t *testing.T) {
	t.Parallel()
	var body struct{ Items []recommend.Item }
	var items []Item
	for id := uint64(1); id <= DefaultItems; id++ {
		items = append(items, ItemOf(id))
	}
	b, _ := json.Marshal(map[string]any{"items": items})
	if err := json.Unmarshal(b, &body); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(body.Items); i += 1000 {
		if err := recommend.ValidateItems(body.Items[i:min(i+1000, len(body.Items))]); err != nil {
			t.Fatalf("demo catalog refused: %v", err)
		}
	}
	byID := map[uint64]*recommend.Item{}
	for i := range body.Items {
		byID[body.Items[i].ItemID] = &body.Items[i]
	}
	snap := recommend.NewSnapshot(1, byID)
	monday := time.Date(2026, 11, 23, 0, 30, 0, 0, time.UTC)
	for id := uint64(1); id <= DefaultStations; id++ {
		st := StationOf(id)
		if err := st.Prepare(); err != nil {
			t.Fatalf("station %d refused: %v", id, err)
		}
		for h := range 7 * 24 {
			at := monday.Add(time.Duration(h) * time.Hour)
			w, ok := st.WindowAt(at)
			if !ok {
				t.Fatalf("station %d has no daypart at %s", id, at)
			}
			// Station 1 is the one a newcomer asks for (limit=20); the
			// others play long talk and radio items, fewer per daypart.
			want := 1
			if id == 1 {
				want = 20
			}
			if pl := recommend.Build(snap, &st, w); len(pl.Entries) < want {
				t.Fatalf("station %d at %s: %d items, want >= %d", id, at, len(pl.Entries), want)
			}
		}
	}
}
