-- The catalog as analysts see it: the latest version of each item (ReplacingMergeTree by the Kafka
-- offset of its change record on the `catalog` topic; query with FINAL or argMax for exact answers).
CREATE TABLE IF NOT EXISTS {db}.catalog (
    item_id     UInt64,
    biz         Enum8('' = 0, 'audio' = 1, 'video' = 2, 'live' = 3, 'article' = 4, 'comic' = 5, 'radio' = 6),
    album_id    UInt64,
    artist_id   UInt64,
    title       String,
    category    String,
    tags        Array(String),
    region      String,
    score       Float64,
    online_at   UInt64,
    duration_ms UInt64,
    status      Enum8('online' = 1, 'offline' = 2),
    starts_at   UInt64,
    ends_at     UInt64,
    version     UInt64
) ENGINE = ReplacingMergeTree(version)
ORDER BY item_id;
