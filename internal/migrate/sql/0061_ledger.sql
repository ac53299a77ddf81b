-- The money ledger's copy for analysts (package wallet, wallet/copy.go):
-- every PostgreSQL ledger entry once. The copier takes entries by windows of
-- finished PostgreSQL transactions [xid_from, xid_to) and inserts each
-- window as one block, every row carrying xid_to: the copy resumes from
-- max(xid_to), so a block lands whole or not at all and none twice.
-- coins is signed (a debit is negative); account_kind names the account
-- (wallet, income, platform, payments), kind the entry (recharge,
-- gift_sent, gift_income, gift_platform, gift_share, payment),
-- transfer_kind the movement (recharge, gift, gift_income).
CREATE TABLE IF NOT EXISTS {db}.ledger (
    entry_id      UInt64,
    transfer_id   UInt64,
    account_id    UInt64,
    account_kind  Enum8('wallet' = 1, 'income' = 2, 'platform' = 3, 'payments' = 4),
    owner         UInt64,
    kind          String,
    transfer_kind String,
    coins         Int64,
    balance_after Int64,
    ref           String,
    room_id       UInt64,
    at            DateTime,
    xid_to        UInt64
) ENGINE = MergeTree
PARTITION BY toYYYYMM(at)
ORDER BY (account_kind, owner, at, entry_id);
