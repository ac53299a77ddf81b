// Package wallet is onair's money: a double-entry ledger in PostgreSQL in
// integer coins (internal/pgdb/sql/0050_wallet.sql), recharges through a
// PaymentProvider, the gift catalog, paid gifts, and the transactional
// outbox whose relay takes each paid gift to the events topic exactly once.
//
// Every movement is one transfer between two accounts with a unique
// idempotency key, and its two entries (each with the account's balance
// after it), written in one transaction. A wallet or an income never goes
// negative: a CHECK constraint refuses the debit, not a check in Go.
//
// Accounts: a user's wallet (shard 0); an anchor's income and the platform
// split over Config.Shards sub-accounts, chosen by a hash of the paying
// user, so that thousands of gifts a second into one anchor do not queue on
// one row (balance = the sum of the shards, read with one query); payments
// (money from outside, minus all ever recharged) is one account, so one
// CHECK bounds all money in.
//
// A paid gift of total = price × count coins: the sender's wallet pays
// total to the platform (kind gift); the platform passes the anchor's share
// income = floor(total × SharePct / 100) on to the anchor's income (kind
// gift_income); the platform keeps total − income. Both transfers and the
// gift's outbox row are one transaction (the function wallet_gift).
//
// Exactness bound (Redis ranking scores and PK points are doubles, exact
// for integers up to 2^53): the payments account is kept ≥ −(2^53−1) by a
// CHECK, so at most MaxCoinsIn coins ever come in. Coins enter wallets only
// through recharges, and a gift moves coins out of a wallet into income and
// platform accounts, from which no route leads back to a wallet; so the
// coins gifted by one user in one room (a ranking score), in a PK, or by
// everyone, are at most MaxCoinsIn < 2^53, and every sum the pipeline adds
// is exact. A later kind that pays wallets from the platform (red packets,
// quiz prizes) must count against the same bound.
package wallet

// Bounds of amounts, in coins.
const (
	// MaxRecharge is the largest recharge (api.md: coins 1..1 000 000).
	MaxRecharge = 1_000_000
	// MaxPrice is the largest catalog price.
	MaxPrice = 1_000_000
	// MaxCount is the most gifts one request sends.
	MaxCount = 1000
	// MaxGiftCoins is the most one gift request costs.
	MaxGiftCoins = MaxPrice * MaxCount
	// MaxCoinsIn is the most coins onair ever takes in (2^53 − 1): every
	// sum of coins stays exact in a double.
	MaxCoinsIn = 1<<53 - 1
)
