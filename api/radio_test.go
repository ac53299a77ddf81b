package api

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/onair/onair/recommend"
)

// TestPlaylistJSON: the hand-written encoding equals encoding/json's.
func TestPlaylistJSON(t *testing.T) {
	t.Parallel()
	name := `morning "news" <&>`
	loc, _ := time.LoadLocation("Asia/Shanghai")
	f := func(r recommend.Result) {
		t.Helper()
		want, err := json.Marshal(&r)
		if err != nil {
			t.Fatal(err)
		}
		got := appendPlaylistJSON(nil, &r)
		if string(got) != string(want)+"\n" {
			t.Fatalf("got  %s\nwant %s", got, want)
		}
	}
	f(recommend.Result{StationID: 3, Items: []recommend.Entry{}})
	f(recommend.Result{StationID: 3, Daypart: &name, StartsAt: time.Date(2026, 11, 23, 6, 0, 0, 0, loc), EndsAt: time.Date(2026, 11, 23, 10, 0, 0, 5, loc),
		Items: []recommend.Entry{{ItemID: 1, Slot: "program", Reason: "tag:tech", At: 1763800000000}, {ItemID: 2, Slot: "personal", Reason: "personal: affinity tag:日本", At: 5}}})
}
