package aggregate

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/onair/onair/internal/testenv"
)

// TestClaimsLookupBindsIDs: the claims lookup after a Redis loss finds
// event ids holding NUL bytes, invalid UTF-8, quotes, backslashes and
// what would be SQL, as the bytes they are, and only those.
func TestClaimsLookupBindsIDs(t *testing.T) {
	t.Parallel()
	ch, db := testenv.ClickHouse(t)
	ctx := context.Background()
	ids := []string{"plain", "nul\x00byte", "bad\xff\xfeutf8", `it's`, `back\slash`, `x') OR 1=1 --`, "\\'\x00"}
	batch, err := ch.PrepareBatch(ctx, "INSERT INTO "+db+".events (user_id, event_id, ts, ts_msec, kafka_partition, kafka_offset)")
	if err != nil {
		t.Fatal(err)
	}
	for i, id := range ids {
		if err := batch.Append(uint64(7), id, time.Unix(1, 0), uint16(i), uint32(2), uint64(100+i)); err != nil {
			t.Fatal(err)
		}
	}
	// another user's row with the same id must not match
	if err := batch.Append(uint64(8), "plain", time.Unix(1, 0), uint16(0), uint32(2), uint64(99)); err != nil {
		t.Fatal(err)
	}
	if err := batch.Send(); err != nil {
		t.Fatal(err)
	}
	got, err := claimsIn(ctx, ch, db, []uint64{7}, append(ids, "absent"), 0, 10_000)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(ids) {
		t.Fatalf("found %d claims, want %d: %v", len(got), len(ids), got)
	}
	for i, id := range ids {
		if got[claimKey{7, int64(1_000+i) / dedupeBucketMs, id}] != "2:"+strconv.Itoa(100+i) {
			t.Errorf("id %q: claim %q", id, got[claimKey{7, int64(1_000+i) / dedupeBucketMs, id}])
		}
	}
}
