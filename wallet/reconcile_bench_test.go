package wallet

import (
	"context"
	"testing"
	"time"
)

// BenchmarkReconcile1M makes a ledger of 1 000 000 entries (500 000
// transfers: recharges of 1 000 users from payments, in SQL) and times
// Reconcile over it; the figure (≤ 10 s) is its ns/op.
//
//	go test -run X -bench Reconcile1M -benchtime 1x ./wallet/
func BenchmarkReconcile1M(b *testing.B) {
	ctx := context.Background()
	w := newWalletB(b, Config{})
	t0 := time.Now()
	if _, err := w.db.Pool().Exec(ctx, `
		INSERT INTO wallet_accounts (kind, owner, shard) SELECT 'wallet', u, 0 FROM generate_series(1, 1000) u;
		INSERT INTO wallet_accounts (kind, owner, shard) VALUES ('payments', 0, 0);
		INSERT INTO wallet_transfers (idem, debit, credit, coins, kind, ref)
			SELECT 'bench:' || i, (SELECT id FROM wallet_accounts WHERE kind = 'payments'),
				(SELECT id FROM wallet_accounts WHERE kind = 'wallet' AND owner = 1 + i % 1000), 1 + i % 7, 'recharge', 'b' || i
			FROM generate_series(1, 500000) i;
		INSERT INTO wallet_entries (account_id, transfer_id, coins, balance_after, kind, ref)
			SELECT debit, id, -coins, 0, 'payment', ref FROM wallet_transfers
			UNION ALL SELECT credit, id, coins, 0, 'recharge', ref FROM wallet_transfers;
		UPDATE wallet_accounts a SET balance = s.sum FROM (SELECT account_id, sum(coins) AS sum FROM wallet_entries GROUP BY account_id) s
			WHERE s.account_id = a.id;
		ANALYZE;`); err != nil {
		b.Fatal(err)
	}
	b.Logf("made 1 000 000 entries in %s", time.Since(t0).Round(time.Millisecond))
	b.ResetTimer()
	for range b.N {
		rep, err := Reconcile(ctx, w.db, ReconcileConfig{})
		if err != nil {
			b.Fatal(err)
		}
		if rep.Entries != 1_000_000 || len(rep.Differences) > 0 {
			b.Fatalf("%d entries, differences %v", rep.Entries, rep.Differences)
		}
	}
}
