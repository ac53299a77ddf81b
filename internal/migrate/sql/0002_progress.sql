-- The latest progress per (user_id, biz, item_id). Read with FINAL (or
-- argMax by version) for exact answers before background merges run.
-- version is the client ts in milliseconds: the newest report wins.
CREATE TABLE IF NOT EXISTS {db}.progress (
    user_id     UInt64,
    biz         Enum8('' = 0, 'audio' = 1, 'video' = 2, 'live' = 3, 'article' = 4, 'comic' = 5, 'radio' = 6),
    item_id     UInt64,
    position_ms UInt64,
    duration_ms UInt64,
    finished    UInt8,
    device      String,
    updated_at  DateTime,
    ts_ms       UInt64,
    version     UInt64
) ENGINE = ReplacingMergeTree(version)
ORDER BY (user_id, biz, item_id);
