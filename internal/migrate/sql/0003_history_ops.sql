-- Durable copy of users' history operations, so that deletes, clears, pauses
-- and hides survive the loss of Redis (history re-warms a user from here and
-- from progress). Written by history.Store, one row per operation; read per
-- user only. ts_ms is the operation's effective time in Unix milliseconds:
-- a progress row with ts_ms <= a delete/clear's ts_ms is gone for good.
-- biz = '' with op = 'clear' clears every business line.
CREATE TABLE IF NOT EXISTS {db}.history_ops (
    user_id    UInt64,
    op         Enum8('delete' = 1, 'clear' = 2, 'pause' = 3, 'resume' = 4, 'hide' = 5),
    biz        Enum8('' = 0, 'audio' = 1, 'video' = 2, 'live' = 3, 'article' = 4, 'comic' = 5, 'radio' = 6),
    item_id    UInt64,
    ts_ms      UInt64,
    created_at DateTime DEFAULT now()
) ENGINE = MergeTree
ORDER BY (user_id, ts_ms);
