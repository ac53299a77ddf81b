package wallet

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/onair/onair/internal/testenv"
)

var ledgerQuery = regexp.MustCompile("<!-- ledger-query: ([a-z0-9-]+) -->\n```sql\n((?s:.*?))```")

// TestLedgerQueries makes recharges and gifts, copies the ledger to
// ClickHouse (the Copier, in blocks of at most 7 entries, while a
// recharge's transaction is held open and after), runs docs/analytics.md's ledger queries and compares
// each answer with what the test computes from the movements it made.
// Break tried: the copy window's end at the snapshot's xmax (every
// transaction id assigned so far) instead of its xmin → the open
// transaction's entries fall behind the copy's position, are never
// copied, and the funnel counts 12 recharging users, not 13.
func TestLedgerQueries(t *testing.T) {
	ctx := context.Background()
	doc, err := os.ReadFile("../docs/analytics.md")
	if err != nil {
		t.Fatal(err)
	}
	queries := ledgerQuery.FindAllStringSubmatch(string(doc), -1)
	if len(queries) != 3 {
		t.Fatalf("docs/analytics.md has %d ledger queries, want 3", len(queries))
	}
	w := newWallet(t, Config{})
	ch, db := testenv.ClickHouse(t)
	cp, err := NewCopier(CopyConfig{DB: w.db, ClickHouse: ch, Database: db, Batch: 7})
	if err != nil {
		t.Fatal(err)
	}
	var tz string
	if err := ch.QueryRow(ctx, "SELECT timezone()").Scan(&tz); err != nil {
		t.Fatal(err)
	}
	loc, _ := time.LoadLocation(tz)
	day := time.Now().In(loc).Format(time.DateOnly)

	rng := rand.New(rand.NewPCG(3, 4))
	type dayRoom struct {
		room                 uint64
		coins, gifts, income int64
	}
	rooms := map[uint64]*dayRoom{}
	gifters := map[uint64][2]int64{}
	recharges := map[uint64]int{}
	var rechargeCoins int64
	// A transaction held open while later ones commit and the copier
	// steps: its entry must still be copied once it commits.
	tx, err := w.db.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx) // (after Commit: a no-op) a failed test must not leave it open
	// A recharge of user 99 from a payments account of its own: the
	// transaction must not hold the one payments row the others need.
	if _, err := tx.Exec(ctx, `SELECT wallet_move('late', 'recharge', 'late', wallet_account('payments', 0, 999::smallint),
		wallet_account('wallet', 99, 0::smallint), 77, 'payment', 'recharge')`); err != nil {
		t.Fatal(err)
	}
	for u := uint64(1); u <= 12; u++ {
		for k := range 1 + int(u%3/2) { // users 2, 5, 8, 11 recharge twice
			c := 500 + rng.Int64N(5000)
			if _, err := w.Recharge(ctx, Order{UserID: u, OrderID: fmt.Sprint("o", k), Coins: c}); err != nil {
				t.Fatal(err)
			}
			recharges[u]++
			rechargeCoins += c
		}
	}
	for { // copy everything the copier can while the transaction is open
		n, err := cp.Step(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
	}
	for u := uint64(1); u <= 8; u++ {
		for i := range 6 {
			room := 1 + uint64(rng.IntN(3))
			gid, n := int64(1+rng.IntN(3)), int64(1+rng.IntN(4))
			r, err := w.PayGift(ctx, GiftInput{Sender: u, Room: room, Anchor: 100 + room, GiftID: uint64(gid), Count: n, EventID: fmt.Sprint(i)})
			if e, ok := err.(interface{ Status() int }); ok && e.Status() == 402 {
				continue
			} else if err != nil {
				t.Fatal(err)
			}
			dr := rooms[room]
			if dr == nil {
				dr = &dayRoom{room: room}
				rooms[room] = dr
			}
			dr.coins += r.Coins
			dr.gifts++
			dr.income += r.Coins * 50 / 100
			g := gifters[u]
			gifters[u] = [2]int64{g[0] + r.Coins, g[1] + 1}
		}
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	recharges[99]++
	rechargeCoins += 77
	for {
		n, err := cp.Step(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
	}
	if time.Now().In(loc).Format(time.DateOnly) != day {
		t.Skip("midnight passed during the test")
	}

	want := map[string][][]string{}
	var rev [][]string
	for _, r := range slices.SortedFunc(func(yield func(*dayRoom) bool) {
		for _, v := range rooms {
			if !yield(v) {
				return
			}
		}
	}, func(a, b *dayRoom) int { return cmp.Compare(a.room, b.room) }) {
		rev = append(rev, []string{day, fmt.Sprint(r.room), fmt.Sprint(r.coins), fmt.Sprint(r.gifts), fmt.Sprint(r.income)})
	}
	want["revenue-per-day-room"] = rev
	var top [][]string
	for u, g := range gifters {
		top = append(top, []string{fmt.Sprint(u), fmt.Sprint(g[0]), fmt.Sprint(g[1])})
	}
	slices.SortFunc(top, func(a, b []string) int {
		var x, y int64
		fmt.Sscan(a[1], &x)
		fmt.Sscan(b[1], &y)
		return cmp.Or(cmp.Compare(y, x), cmp.Compare(len(a[0]), len(b[0])), strings.Compare(a[0], b[0]))
	})
	want["top-gifters"] = top[:min(5, len(top))]
	again := 0
	for _, n := range recharges {
		if n >= 2 {
			again++
		}
	}
	want["recharge-funnel"] = [][]string{{fmt.Sprint(len(recharges)), fmt.Sprint(len(gifters)), fmt.Sprint(again), fmt.Sprint(rechargeCoins)}}

	for _, q := range queries {
		name, sql := q[1], strings.ReplaceAll(q[2], "onair.", db+".")
		got := queryRows(t, ch, sql, loc)
		if !reflect.DeepEqual(got, want[name]) {
			t.Errorf("query %s:\n%s\ngot  %v\nwant %v", name, sql, got, want[name])
		}
	}
	rep, err := Reconcile(ctx, w.db, ReconcileConfig{Copy: ClickHouseCopy{Conn: ch, Database: db}})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range rep.Differences {
		if !strings.Contains(d, "gift events") { // no aggregator here: no events
			t.Errorf("reconcile: %s", d)
		}
	}
}

// queryRows runs q and returns every cell as a string (dates as
// 2006-01-02), as cmd/onair's documentation test does.
func queryRows(t *testing.T, ch driver.Conn, q string, loc *time.Location) [][]string {
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
			if tv, ok := x.(time.Time); ok {
				row[i] = tv.In(loc).Format(time.DateOnly)
				continue
			}
			row[i] = fmt.Sprint(x)
		}
		out = append(out, row)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
