-- The money ledger (package wallet): double-entry, integer coins.
--
-- An account is (kind, owner, shard). A user's wallet and payments are
-- shard 0; an anchor's income and the platform are split over sub-accounts
-- (shard = a hash of the paying user mod wallet.Config.Shards) so that a
-- hot anchor's gifts do not all queue on one row; their balance is the sum
-- of the shards. payments is money that came in from outside: its balance
-- is minus everything ever recharged, so every account sums to zero.
CREATE TABLE wallet_accounts (
    id      bigserial PRIMARY KEY,
    kind    text NOT NULL CHECK (kind IN ('wallet', 'income', 'platform', 'payments')),
    owner   bigint NOT NULL CHECK (owner >= 0),
    shard   smallint NOT NULL CHECK (shard >= 0),
    balance bigint NOT NULL DEFAULT 0,
    UNIQUE (kind, owner, shard),
    -- A wallet or an income never goes negative: by constraint, not by a
    -- check in Go (a debit past it fails the statement: 402).
    CONSTRAINT wallet_never_negative CHECK (kind NOT IN ('wallet', 'income') OR balance >= 0),
    -- Exactness bound (wallet.MaxCoinsIn): at most 2^53-1 coins ever come
    -- in (payments is one account), so every sum of coins (a ranking score in
    -- Redis, a double) stays an exact integer: see wallet/doc.go.
    CONSTRAINT wallet_coins_in_bound CHECK (kind <> 'payments' OR balance >= -9007199254740991)
);

-- One row per movement between two accounts. debit, credit and the
-- entries' account_id carry no FOREIGN KEY on purpose: its check takes a
-- KEY SHARE lock on the account row, and thousands of gifts a second
-- sharing locks on the same hot rows (platform, an anchor's income) pile
-- up in multixacts (measured: LWLock:MultiXactMemberSLRU waits under the
-- gifts load). The ids come from wallet_account in the same functions,
-- and onair wallet reconcile checks every entry against its account.
CREATE TABLE wallet_transfers (
    id         bigserial PRIMARY KEY,
    idem       text NOT NULL UNIQUE,
    debit      bigint NOT NULL,
    credit     bigint NOT NULL,
    coins      bigint NOT NULL CHECK (coins > 0),
    kind       text NOT NULL,
    ref        text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    CHECK (debit <> credit)
);

-- Two rows per transfer: the debit (coins < 0) and the credit, each with
-- its account's balance after it.
CREATE TABLE wallet_entries (
    id            bigserial PRIMARY KEY,
    account_id    bigint NOT NULL,
    transfer_id   bigint NOT NULL REFERENCES wallet_transfers (id),
    coins         bigint NOT NULL CHECK (coins <> 0),
    balance_after bigint NOT NULL,
    kind          text NOT NULL,
    ref           text NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL DEFAULT now(),
    -- The writing transaction: the ClickHouse copy (wallet/copy.go) takes
    -- entries by windows of finished transactions, each exactly once.
    xid           xid8 NOT NULL DEFAULT pg_current_xact_id()
);
CREATE INDEX wallet_entries_account ON wallet_entries (account_id, id DESC);
CREATE INDEX wallet_entries_xid ON wallet_entries (xid);
CREATE INDEX wallet_entries_transfer ON wallet_entries (transfer_id);

-- Recharge orders: the client's order id per user, the amount asked, and
-- whether the provider confirmed it (the credit's transfer).
CREATE TABLE wallet_orders (
    user_id     bigint NOT NULL,
    order_id    text NOT NULL,
    coins       bigint NOT NULL CHECK (coins > 0),
    transfer_id bigint REFERENCES wallet_transfers (id),
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, order_id)
);

-- The gift catalog (GET /v1/gifts; PUT /v1/admin/gifts replaces it). The
-- default catalog is seeded here.
CREATE TABLE wallet_gifts (
    gift_id bigint PRIMARY KEY CHECK (gift_id > 0),
    name    text NOT NULL UNIQUE,
    price   bigint NOT NULL CHECK (price BETWEEN 1 AND 1000000)
);
INSERT INTO wallet_gifts (gift_id, name, price) VALUES
    (1, 'rose', 1), (2, 'rocket', 200), (3, 'heart', 10), (4, 'crown', 1000), (5, 'castle', 10000);

-- The transactional outbox: a paid gift's event, written in the gift's
-- transaction, produced to Kafka by the relay (wallet/relay.go), then
-- deleted in the transaction that moves the relay's position.
CREATE TABLE wallet_outbox (
    id          bigserial PRIMARY KEY,
    transfer_id bigint NOT NULL REFERENCES wallet_transfers (id),
    user_id     bigint NOT NULL,
    room_id     bigint NOT NULL,
    anchor_id   bigint NOT NULL,
    gift_id     bigint NOT NULL,
    coins       bigint NOT NULL,
    ts          bigint NOT NULL -- Unix ms of the transfer
);

-- The relay's position: the last outbox id produced and how many rows in all.
CREATE TABLE wallet_relay (
    name     text PRIMARY KEY,
    position bigint NOT NULL DEFAULT 0,
    relayed  bigint NOT NULL DEFAULT 0
);
INSERT INTO wallet_relay (name) VALUES ('gifts');

-- wallet_account returns the id of an account, creating it (balance 0).
CREATE FUNCTION wallet_account(k text, o bigint, s smallint) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE aid bigint;
BEGIN
    SELECT id INTO aid FROM wallet_accounts WHERE kind = k AND owner = o AND shard = s;
    IF aid IS NULL THEN
        INSERT INTO wallet_accounts (kind, owner, shard) VALUES (k, o, s)
            ON CONFLICT (kind, owner, shard) DO NOTHING RETURNING id INTO aid;
        IF aid IS NULL THEN
            SELECT id INTO aid FROM wallet_accounts WHERE kind = k AND owner = o AND shard = s;
        END IF;
    END IF;
    RETURN aid;
END $$;

-- wallet_move moves coins from one account to another as one transfer and
-- its two entries. A transfer whose idem key exists is not made again:
-- tid is the existing one and fresh is false. A debit past a wallet's
-- balance fails the CHECK (23514) and the caller's transaction with it.
CREATE FUNCTION wallet_move(p_idem text, p_kind text, p_ref text,
    p_debit bigint, p_credit bigint, p_coins bigint, p_debit_kind text, p_credit_kind text,
    OUT tid bigint, OUT fresh boolean, OUT debit_after bigint, OUT credit_after bigint, OUT at timestamptz)
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO wallet_transfers (idem, debit, credit, coins, kind, ref)
        VALUES (p_idem, p_debit, p_credit, p_coins, p_kind, p_ref)
        ON CONFLICT (idem) DO NOTHING RETURNING id, created_at INTO tid, at;
    fresh := tid IS NOT NULL;
    IF NOT fresh THEN
        SELECT id, created_at INTO tid, at FROM wallet_transfers WHERE idem = p_idem;
        SELECT balance INTO debit_after FROM wallet_accounts WHERE id = p_debit;
        SELECT balance INTO credit_after FROM wallet_accounts WHERE id = p_credit;
        RETURN;
    END IF;
    UPDATE wallet_accounts SET balance = balance - p_coins WHERE id = p_debit RETURNING balance INTO debit_after;
    UPDATE wallet_accounts SET balance = balance + p_coins WHERE id = p_credit RETURNING balance INTO credit_after;
    INSERT INTO wallet_entries (account_id, transfer_id, coins, balance_after, kind, ref, created_at)
        VALUES (p_debit, tid, -p_coins, debit_after, p_debit_kind, p_ref, at),
               (p_credit, tid, p_coins, credit_after, p_credit_kind, p_ref, at);
END $$;

-- wallet_gift is a paid gift in one round trip: the sender pays
-- price x count to the platform (kind gift), the platform passes the
-- anchor's share (floor(total * share_pct / 100)) on to the anchor's income
-- (kind gift_income), and the gift's event goes in the outbox. status:
-- 'ok', 'replay' (idem seen: nothing moved, the first result's transfer and
-- coins, the balance now) or 'no_gift'. A short wallet fails the CHECK.
CREATE FUNCTION wallet_gift(p_idem text, p_sender bigint, p_room bigint, p_anchor bigint,
    p_gift bigint, p_count bigint, p_shard smallint, p_share_pct bigint,
    OUT status text, OUT tid bigint, OUT balance bigint, OUT coins bigint, OUT ts bigint)
LANGUAGE plpgsql AS $$
DECLARE
    v_price bigint; v_share bigint; v_ref text;
    w bigint; plat bigint; inc bigint;
    m record; m2 record;
BEGIN
    SELECT price INTO v_price FROM wallet_gifts WHERE gift_id = p_gift;
    IF v_price IS NULL AND NOT EXISTS (SELECT 1 FROM wallet_transfers WHERE idem = p_idem) THEN
        status := 'no_gift';
        RETURN;
    END IF;
    coins := coalesce(v_price, 1) * p_count;
    v_share := coins * p_share_pct / 100;
    v_ref := 'room:' || p_room || ' gift:' || p_gift || ' x' || p_count;
    w := wallet_account('wallet', p_sender, 0::smallint);
    plat := wallet_account('platform', 0, p_shard);
    SELECT * INTO m FROM wallet_move(p_idem, 'gift', v_ref, w, plat, coins, 'gift_sent', 'gift_platform');
    tid := m.tid;
    balance := m.debit_after;
    ts := (extract(epoch FROM m.at) * 1000)::bigint;
    IF NOT m.fresh THEN
        status := 'replay';
        SELECT t.coins INTO coins FROM wallet_transfers t WHERE t.id = m.tid;
        RETURN;
    END IF;
    status := 'ok';
    IF v_share > 0 THEN
        inc := wallet_account('income', p_anchor, p_shard);
        SELECT * INTO m2 FROM wallet_move(p_idem || ':income', 'gift_income', v_ref, plat, inc, v_share, 'gift_share', 'gift_income');
    END IF;
    INSERT INTO wallet_outbox (transfer_id, user_id, room_id, anchor_id, gift_id, coins, ts)
        VALUES (tid, p_sender, p_room, p_anchor, p_gift, coins, ts);
END $$;

-- wallet_recharge records a recharge order and, when p_paid (the provider
-- confirmed it), credits it once from payments. status: 'ok' (credited
-- now), 'replay' (credited before), 'pending' (recorded, not paid yet),
-- 'conflict' (the order exists with another amount: ordered holds it).
CREATE FUNCTION wallet_recharge(p_user bigint, p_order text, p_coins bigint, p_paid boolean,
    OUT status text, OUT balance bigint, OUT ordered bigint)
LANGUAGE plpgsql AS $$
DECLARE o record; m record; w bigint; pay bigint;
BEGIN
    INSERT INTO wallet_orders (user_id, order_id, coins) VALUES (p_user, p_order, p_coins)
        ON CONFLICT (user_id, order_id) DO NOTHING;
    SELECT * INTO o FROM wallet_orders WHERE user_id = p_user AND order_id = p_order FOR UPDATE;
    ordered := o.coins;
    w := wallet_account('wallet', p_user, 0::smallint);
    IF o.coins <> p_coins THEN
        status := 'conflict';
    ELSIF o.transfer_id IS NOT NULL THEN
        status := 'replay';
    ELSIF NOT p_paid THEN
        status := 'pending';
    ELSE
        pay := wallet_account('payments', 0, 0::smallint);
        SELECT * INTO m FROM wallet_move('recharge:' || p_user || ':' || p_order, 'recharge', p_order, pay, w, p_coins, 'payment', 'recharge');
        UPDATE wallet_orders SET transfer_id = m.tid WHERE user_id = p_user AND order_id = p_order;
        status := 'ok';
    END IF;
    SELECT a.balance INTO balance FROM wallet_accounts a WHERE a.id = w;
END $$;
