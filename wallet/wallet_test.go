package wallet

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/onair/onair/ingest"
	"github.com/onair/onair/internal/kafka"
	"github.com/onair/onair/internal/pgdb"
	"github.com/onair/onair/internal/pgdb/pgtest"
	"github.com/onair/onair/internal/refusal"
)

func newWallet(t *testing.T, cfg Config) *Wallet {
	t.Helper()
	if cfg.DB == nil {
		cfg.DB = pgtest.DB(t)
	}
	w, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func refusalOf(t *testing.T, err error) *refusal.Error {
	t.Helper()
	e, ok := refusal.As(err)
	if !ok {
		t.Fatalf("want a refusal, got %v", err)
	}
	return e
}

// TestRechargeIdempotent: an order credits once; a repeat answers the same
// wallet; another amount is 409 naming coins; coins out of 1..1e6 is 400.
// Break tried: a key per request instead of per (user, order) → the
// repeat credits twice and the balance check fails.
func TestRechargeIdempotent(t *testing.T) {
	ctx := context.Background()
	w := newWallet(t, Config{})
	r, err := w.Recharge(ctx, Order{UserID: 7, OrderID: "o-1", Coins: 600})
	if err != nil || r.Balance.Balance != 600 {
		t.Fatalf("first recharge: %+v %v", r, err)
	}
	r, err = w.Recharge(ctx, Order{UserID: 7, OrderID: "o-1", Coins: 600})
	if err != nil || r.Balance.Balance != 600 {
		t.Fatalf("repeat: %+v %v", r, err)
	}
	_, err = w.Recharge(ctx, Order{UserID: 7, OrderID: "o-1", Coins: 700})
	if e := refusalOf(t, err); e.Status() != 409 || e.Field != "coins" {
		t.Fatalf("repeat with another amount: %+v", e)
	}
	// another user may use the same order id
	if r, err = w.Recharge(ctx, Order{UserID: 8, OrderID: "o-1", Coins: 5}); err != nil || r.Balance.Balance != 5 {
		t.Fatalf("user 8: %+v %v", r, err)
	}
	for _, c := range []int64{0, -1, MaxRecharge + 1} {
		_, err := w.Recharge(ctx, Order{UserID: 7, OrderID: "o-2", Coins: c})
		if e := refusalOf(t, err); e.Status() != 400 || e.Field != "coins" {
			t.Fatalf("coins %d: %+v", c, e)
		}
	}
	es, _, err := w.Ledger(ctx, 7, 10, 0)
	if err != nil || len(es) != 1 || es[0].Kind != "recharge" || es[0].Coins != 600 || es[0].BalanceAfter != 600 {
		t.Fatalf("ledger %+v %v", es, err)
	}
	checkReconciled(t, w)
}

// TestWebhookRecharge: the webhook provider leaves the order pending until
// Confirm (the signed callback), which credits it once.
func TestWebhookRecharge(t *testing.T) {
	ctx := context.Background()
	w := newWallet(t, Config{Provider: WebhookProvider{}})
	r, err := w.Recharge(ctx, Order{UserID: 9, OrderID: "p-1", Coins: 100})
	if err != nil || !r.Pending || r.Balance.Balance != 0 {
		t.Fatalf("pending recharge: %+v %v", r, err)
	}
	for range 2 {
		if r, err = w.Confirm(ctx, Order{UserID: 9, OrderID: "p-1", Coins: 100}); err != nil || r.Pending || r.Balance.Balance != 100 {
			t.Fatalf("confirm: %+v %v", r, err)
		}
	}
	secret, body := []byte("s3cret"), []byte(`{"order_id":"p-1"}`)
	if !VerifySignature(secret, body, Sign(secret, body)) || VerifySignature(secret, body, Sign([]byte("other"), body)) ||
		VerifySignature(secret, []byte(`{"order_id":"p-2"}`), Sign(secret, body)) || VerifySignature(nil, body, Sign(nil, body)) {
		t.Fatal("signature checks wrong")
	}
}

// TestConcurrentDebitsNeverNegative: 40 senders race 200 gifts of 10 coins
// against a wallet of 500: exactly 50 are paid, the rest are 402 naming
// count and move nothing. Break tried: dropping the CHECK (balance >= 0)
// (ALTER TABLE ... DROP CONSTRAINT, below with -run ...Dropped) → all 200
// are paid and the balance is -1500: the test fails.
func TestConcurrentDebitsNeverNegative(t *testing.T) {
	testDebits(t, false)
}

// TestConcurrentDebitsWithoutConstraint shows the constraint is what holds:
// without it, the same race drives the wallet negative.
func TestConcurrentDebitsWithoutConstraint(t *testing.T) {
	testDebits(t, true)
}

func testDebits(t *testing.T, dropCheck bool) {
	ctx := context.Background()
	db := pgtest.DB(t)
	if dropCheck {
		if _, err := db.Exec(ctx, `ALTER TABLE wallet_accounts DROP CONSTRAINT wallet_never_negative`); err != nil {
			t.Fatal(err)
		}
	}
	w := newWallet(t, Config{DB: db})
	if _, err := w.Recharge(ctx, Order{UserID: 1, OrderID: "o", Coins: 500}); err != nil {
		t.Fatal(err)
	}
	var paid, short atomic.Int64
	var wg sync.WaitGroup
	for g := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 5 {
				_, err := w.PayGift(ctx, GiftInput{Sender: 1, Room: 3, Anchor: 2, GiftID: 3, Count: 1, EventID: fmt.Sprintf("e%d-%d", g, i)})
				if e, ok := refusal.As(err); ok && e.Kind == refusal.InsufficientFunds && e.Field == "count" {
					short.Add(1)
				} else if err != nil {
					t.Error(err)
				} else {
					paid.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	b, _ := w.Balance(ctx, 1)
	if dropCheck {
		if b.Balance >= 0 {
			t.Fatalf("without the constraint the wallet stayed at %d", b.Balance)
		}
		t.Logf("without the CHECK: %d paid, balance %d (the break the constraint prevents)", paid.Load(), b.Balance)
		return
	}
	if paid.Load() != 50 || short.Load() != 150 || b.Balance != 0 {
		t.Fatalf("paid %d, short %d, balance %d; want 50, 150, 0", paid.Load(), short.Load(), b.Balance)
	}
	a, _ := w.Balance(ctx, 2)
	if a.Income != 50*5 {
		t.Fatalf("anchor income %d, want %d", a.Income, 50*5)
	}
	checkReconciled(t, w)
}

// TestGiftRetryChargedOnce: the same (sender, event_id) is charged once and
// answers the same transfer; an unknown gift is 400 naming gift_id.
func TestGiftRetryChargedOnce(t *testing.T) {
	ctx := context.Background()
	w := newWallet(t, Config{})
	if _, err := w.Recharge(ctx, Order{UserID: 1, OrderID: "o", Coins: 1000}); err != nil {
		t.Fatal(err)
	}
	a, err := w.PayGift(ctx, GiftInput{Sender: 1, Room: 3, Anchor: 2, GiftID: 2, Count: 2, EventID: "x"})
	if err != nil || a.Coins != 400 || a.Balance != 600 || a.Replay {
		t.Fatalf("first: %+v %v", a, err)
	}
	b, err := w.PayGift(ctx, GiftInput{Sender: 1, Room: 3, Anchor: 2, GiftID: 2, Count: 2, EventID: "x"})
	if err != nil || !b.Replay || b.TransferID != a.TransferID || b.EventID != a.EventID || b.Balance != 600 {
		t.Fatalf("retry: %+v %v", b, err)
	}
	_, err = w.PayGift(ctx, GiftInput{Sender: 1, Room: 3, Anchor: 2, GiftID: 99, Count: 1, EventID: "y"})
	if e := refusalOf(t, err); e.Status() != 400 || e.Field != "gift_id" {
		t.Fatalf("unknown gift: %+v", e)
	}
	for _, n := range []int64{0, MaxCount + 1} {
		_, err = w.PayGift(ctx, GiftInput{Sender: 1, Room: 3, Anchor: 2, GiftID: 2, Count: n, EventID: "z"})
		if e := refusalOf(t, err); e.Status() != 400 || e.Field != "count" {
			t.Fatalf("count %d: %+v", n, e)
		}
	}
	var outbox int
	if err := w.db.QueryRow(ctx, `SELECT count(*) FROM wallet_outbox`).Scan(&outbox); err != nil || outbox != 1 {
		t.Fatalf("outbox rows %d %v; want 1", outbox, err)
	}
	checkReconciled(t, w)
}

// TestSplitProperty checks the income split against a model written from
// the documented rule (income = floor(total × share / 100), platform the
// rest), for random catalogs, counts and shares, through PostgreSQL.
// Break tried: rounding the share (total*share+50)/100 in wallet_gift → the
// anchor's income differs from the model on totals like 3 coins at 50 %.
func TestSplitProperty(t *testing.T) {
	ctx := context.Background()
	db := pgtest.DB(t)
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 6 {
		share := 1 + rng.IntN(100)
		w := newWallet(t, Config{DB: db, SharePct: share, Shards: 1 + rng.IntN(8)})
		price := 1 + rng.Int64N(997)
		if _, err := w.SetCatalog(ctx, []Gift{{GiftID: 1, Name: "g", Price: price}}); err != nil {
			t.Fatal(err)
		}
		sender, anchor := uint64(1000+round), uint64(2000+round)
		if _, err := w.Recharge(ctx, Order{UserID: sender, OrderID: "o", Coins: MaxRecharge}); err != nil {
			t.Fatal(err)
		}
		var wantIncome int64
		for i := range 20 {
			n := 1 + rng.Int64N(7)
			total := price * n
			wantIncome += total * int64(share) / 100 // the model: floor
			if _, err := w.PayGift(ctx, GiftInput{Sender: sender, Room: 1, Anchor: anchor, GiftID: 1, Count: n, EventID: fmt.Sprint(i)}); err != nil {
				t.Fatal(err)
			}
		}
		b, _ := w.Balance(ctx, anchor)
		if b.Income != wantIncome {
			t.Fatalf("share %d%%, price %d: income %d, model %d", share, price, b.Income, wantIncome)
		}
	}
	for _, c := range []struct{ total, inc, plat int64 }{{3, 1, 2}, {1, 0, 1}, {200, 100, 100}, {199, 99, 100}} {
		if i, p := Split(c.total, 50); i != c.inc || p != c.plat {
			t.Fatalf("Split(%d, 50) = %d, %d", c.total, i, p)
		}
	}
}

// TestRelayExactlyOnce: the relay produces each outbox row's event with an
// id derived from its transfer; a failure between the produce and the
// position update (a crash's window) makes the next step produce the same
// events again (same ids and ts), which downstream counts once; the
// position row ends at the last id. Break tried: an event id per produce
// (the producer's server id, ServerID true) → the ids of the two copies
// differ and the test fails.
func TestRelayExactlyOnce(t *testing.T) {
	ctx := context.Background()
	w := newWallet(t, Config{})
	k, err := kafka.StartEmbedded(kafka.EmbeddedConfig{Partitions: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(k.Close)
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.Addrs()...), kgo.ConsumeTopics(kafka.TopicEvents))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	ids, _ := ingest.NewIDGen(1)
	prod, err := ingest.NewProducer(ingest.ProducerConfig{Client: cl, Topic: kafka.TopicEvents, IDs: ids})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Recharge(ctx, Order{UserID: 1, OrderID: "o", Coins: 10000}); err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{}
	for i := range 7 {
		r, err := w.PayGift(ctx, GiftInput{Sender: 1, Room: 3, Anchor: 2, GiftID: 2, Count: int64(1 + i%3), EventID: fmt.Sprint(i)})
		if err != nil {
			t.Fatal(err)
		}
		want[r.EventID] = r.Coins
	}
	crash := true
	r, err := NewRelay(RelayConfig{DB: w.db, Events: prod, Batch: 5, AfterProduce: func() error {
		if crash {
			crash = false
			return errors.New("killed between produce and position")
		}
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := r.Step(ctx); err == nil || n != 0 {
		t.Fatalf("crashed step: %d %v", n, err)
	}
	for {
		n, err := r.Step(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
	}
	var pos, relayed, left int64
	if err := w.db.QueryRow(ctx, `SELECT position, relayed, (SELECT count(*) FROM wallet_outbox) FROM wallet_relay WHERE name = 'gifts'`).Scan(&pos, &relayed, &left); err != nil {
		t.Fatal(err)
	}
	if relayed != 7 || left != 0 {
		t.Fatalf("relayed %d, left %d", relayed, left)
	}
	// 5 produced by the crashed step, then 7: 12 records, 7 distinct ids.
	got := map[string][]ingest.Event{}
	n := 0
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for n < 12 {
		fs := cl.PollFetches(cctx)
		if cctx.Err() != nil {
			t.Fatalf("read %d of 12 records", n)
		}
		fs.EachRecord(func(rec *kgo.Record) {
			var e ingest.Event
			if err := ingest.DecodeRecord(rec.Value, &e); err != nil {
				t.Fatal(err)
			}
			got[e.EventID] = append(got[e.EventID], e)
			n++
		})
	}
	for id, coins := range want {
		cs := got[id]
		if len(cs) == 0 {
			t.Fatalf("event %s never produced", id)
		}
		for _, e := range cs {
			if e.Type != ingest.TypeGift || e.Value != uint64(coins) || e.ServerID || e.TS != cs[0].TS || e.UserID != 1 || e.RoomID != 3 || e.AnchorID != 2 {
				t.Fatalf("event %s: %+v", id, e)
			}
		}
	}
	if len(got) != 7 {
		t.Fatalf("%d distinct event ids, want 7", len(got))
	}
}

// TestRelayOneLeader: two relays stepping together never produce the same
// row twice without a failure (the advisory lock serialises steps).
func TestRelayOneLeader(t *testing.T) {
	ctx := context.Background()
	w := newWallet(t, Config{})
	var mu sync.Mutex
	seen := map[string]int{}
	p := producerFunc(func(_ context.Context, evs []ingest.Event) error {
		mu.Lock()
		defer mu.Unlock()
		for _, e := range evs {
			seen[e.EventID]++
		}
		return nil
	})
	if _, err := w.Recharge(ctx, Order{UserID: 1, OrderID: "o", Coins: 100000}); err != nil {
		t.Fatal(err)
	}
	for i := range 200 {
		if _, err := w.PayGift(ctx, GiftInput{Sender: 1, Room: 3, Anchor: 2, GiftID: 1, Count: 1, EventID: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for range 3 {
		r, _ := NewRelay(RelayConfig{DB: w.db, Events: p, Batch: 7})
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 200 {
				if _, err := r.Step(ctx); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if len(seen) != 200 {
		t.Fatalf("%d events relayed, want 200", len(seen))
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("event %s produced %d times", id, n)
		}
	}
}

// producerFunc adapts a function to Producer, to count what the relay
// hands over (the Kafka path itself is TestRelayExactlyOnce's).
type producerFunc func(context.Context, []ingest.Event) error

func (f producerFunc) Produce(ctx context.Context, evs []ingest.Event) error { return f(ctx, evs) }

// checkReconciled: every account's entries sum to its balance and all
// accounts sum to zero.
func checkReconciled(t *testing.T, w *Wallet) {
	t.Helper()
	rep, err := Reconcile(context.Background(), w.db, ReconcileConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Differences) > 0 {
		t.Fatalf("ledger does not reconcile: %v", rep.Differences)
	}
}

var _ = pgdb.Code
