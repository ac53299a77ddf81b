package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/onair/onair/history"
	"github.com/onair/onair/ingest"
	"github.com/onair/onair/internal/chdb"
	"github.com/onair/onair/internal/testenv"
	"github.com/onair/onair/seed"
)

// docQuery is a query of docs/analytics.md: the ```sql block after a
// <!-- query: name --> marker.
var docQuery = regexp.MustCompile("<!-- query: ([a-z0-9-]+) -->\n```sql\n((?s:.*?))```")

// TestDocumentedQueries seeds a running onair (api + aggregate) through its
// HTTP API with `onair seed`'s traffic, runs every query of
// docs/analytics.md against it, and compares each answer with what the
// test computes from the events the generator made (docModel): no rollup,
// no ClickHouse in the expected values.
func TestDocumentedQueries(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("../../docs/analytics.md")
	if err != nil {
		t.Fatal(err)
	}
	queries := docQuery.FindAllStringSubmatch(string(doc), -1)
	if len(queries) < 16 {
		t.Fatalf("docs/analytics.md has %d marked queries, want at least 16", len(queries))
	}
	kf := testenv.Kafka(t, 4)
	s := startServe(t, kf.Addrs(), "--roles", "api,aggregate", "--clickhouse-flush", "200ms", "--progress-flush", "500ms")
	ch, err := chdb.Open(chdb.Config{Addr: testenv.ClickHouseAddr(t), Database: s.db})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ch.Close() })
	ctx := context.Background()
	var tz string
	if err := ch.QueryRow(ctx, "SELECT timezone()").Scan(&tz); err != nil {
		t.Fatal(err)
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		t.Fatal(err)
	}
	gen := seed.GenConfig{Events: 40_000, Users: 300, Items: 300, Days: 12, Stations: 4, Rooms: 4, Seed: 7, Now: time.Now(), Loc: loc}
	insertCatalog(t, ch, s.db, gen.Items)
	sum, err := seed.Run(ctx, seed.Config{Gen: gen, Target: s.url, Secret: s.secret, ClickHouse: ch, Database: s.db, VerifyTimeout: time.Minute})
	if err != nil {
		t.Fatalf("seed: %v (summary %+v)", err, sum)
	}
	m := newDocModel(gen, loc)
	// progress is written after --progress-flush; wait for every resume point
	testenv.Wait(t, 60*time.Second, func() bool {
		var n uint64
		_ = ch.QueryRow(ctx, "SELECT count() FROM "+s.db+".progress FINAL WHERE position_ms > 0").Scan(&n)
		return n == uint64(len(m.lww))
	}, "onair.progress to hold the %d resume points sent", len(m.lww))

	want := m.expectations()
	for _, q := range queries {
		name, sql := q[1], strings.ReplaceAll(q[2], "onair.", s.db+".")
		expect, ok := want[name]
		if !ok {
			t.Errorf("query %s: the test has no independent answer for it", name)
			continue
		}
		delete(want, name)
		var got [][]string
		// the rollups trail events by an INSERT still running: poll a while
		deadline := time.Now().Add(20 * time.Second)
		for {
			got = runQuery(t, ch, sql, loc)
			if sameRows(got, expect) || time.Now().After(deadline) {
				break
			}
			time.Sleep(100 * time.Millisecond) // polling with a deadline
		}
		if !sameRows(got, expect) {
			t.Errorf("query %s:\n%s\ngot  %v\nwant %v", name, sql, got, expect)
		} else if len(got) == 0 || name == "pk-outcome" && got[0][0] == "0" {
			t.Errorf("query %s answered nothing on the seeded data", name)
		}
	}
	for name := range want {
		t.Errorf("the test checks query %s, which docs/analytics.md no longer has", name)
	}
}

// insertCatalog writes the demo catalog as smart radio would from
// PUT /v1/admin/catalog (which this build may lack).
func insertCatalog(t *testing.T, ch driver.Conn, db string, items int) {
	t.Helper()
	b, err := ch.PrepareBatch(context.Background(), "INSERT INTO "+db+".catalog (item_id, biz, category, tags, duration_ms, status, version)")
	if err != nil {
		t.Fatal(err)
	}
	for id := 1; id <= items; id++ {
		it := seed.ItemOf(uint64(id))
		if err := b.Append(it.ItemID, it.BizName, it.Category, it.Tags, it.DurationMs, "online", uint64(1)); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
}

// runQuery returns q's rows as strings: dates as YYYY-MM-DD, times as
// YYYY-MM-DD hh:mm:ss in loc, arrays as [a b].
func runQuery(t *testing.T, ch driver.Conn, q string, loc *time.Location) [][]string {
	t.Helper()
	rows, err := ch.Query(context.Background(), q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	types := rows.ColumnTypes()
	var out [][]string
	for rows.Next() {
		vals := make([]any, len(types))
		for i, ct := range types {
			vals[i] = reflect.New(ct.ScanType()).Interface()
		}
		if err := rows.Scan(vals...); err != nil {
			t.Fatal(err)
		}
		row := make([]string, len(vals))
		for i, v := range vals {
			x := reflect.ValueOf(v).Elem().Interface()
			switch tv := x.(type) {
			case time.Time:
				if types[i].DatabaseTypeName() == "Date" {
					row[i] = tv.Format(time.DateOnly)
				} else {
					row[i] = tv.In(loc).Format(time.DateTime)
				}
			case float64:
				row[i] = strconv.FormatFloat(tv, 'f', -1, 64)
			default:
				row[i] = fmt.Sprint(x)
			}
		}
		out = append(out, row)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// sameRows compares cell by cell: "*" in want matches anything, and cells
// that are not both integers compare as numbers within 0.0051 (the queries
// round to 1 or 3 places; the model rounds in float64).
func sameRows(got, want [][]string) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if len(got[i]) != len(want[i]) {
			return false
		}
		for j, w := range want[i] {
			g := got[i][j]
			if w == "*" || g == w {
				continue
			}
			gf, err1 := strconv.ParseFloat(g, 64)
			wf, err2 := strconv.ParseFloat(w, 64)
			if err1 != nil || err2 != nil || math.Abs(gf-wf) > 0.051 || !strings.ContainsAny(g+w, ".e") {
				return false
			}
		}
	}
	return true
}

// finished is history's documented rule (docs/api.md): 95 % of the
// duration, or within FinishedTailMs of the end of items of at least
// FinishedTailMinMs.
func finished(pos, dur uint64) bool {
	return dur > 0 && (float64(pos) >= 0.95*float64(dur) ||
		dur >= history.FinishedTailMinMs && pos+history.FinishedTailMs >= dur)
}

// lwwKey is a history entry.
type lwwKey struct {
	user uint64
	biz  ingest.Biz
	item uint64
}

// lwwPos is the newest report with a position: by ts, then the larger
// position, then the larger duration (api.md's last-write-wins).
type lwwPos struct {
	ts       int64
	pos, dur uint64
}

func (a lwwPos) newer(b lwwPos) bool {
	if a.ts != b.ts {
		return a.ts > b.ts
	}
	if a.pos != b.pos {
		return a.pos > b.pos
	}
	return a.dur > b.dur
}

func f3(x float64) string  { return strconv.FormatFloat(math.Round(x*1000)/1000, 'f', -1, 64) }
func f1(x float64) string  { return strconv.FormatFloat(math.Round(x*10)/10, 'f', -1, 64) }
func utoa(x uint64) string { return strconv.FormatUint(x, 10) }
