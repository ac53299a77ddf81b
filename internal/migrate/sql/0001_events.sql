-- Every accepted event, exactly once. kafka_partition/kafka_offset make the
-- aggregator's inserts idempotent: on partition assignment it resumes after
-- max(kafka_offset) of that partition (see aggregate/DESIGN notes).
-- Partitioned by the Kafka append time so that one flush (cut at month
-- boundaries by the aggregator) is one atomic block.
CREATE TABLE IF NOT EXISTS {db}.events (
    event_id        String,
    type            Enum8('progress' = 1, 'play' = 2, 'skip' = 3, 'like' = 4, 'gift' = 5, 'danmaku' = 6),
    user_id         UInt64,
    biz             Enum8('' = 0, 'audio' = 1, 'video' = 2, 'live' = 3, 'article' = 4, 'comic' = 5, 'radio' = 6),
    item_id         UInt64,
    ts              DateTime,
    ts_ms           UInt64,
    position_ms     UInt64,
    duration_ms     UInt64,
    listened_ms     UInt64,
    station_id      UInt64,
    room_id         UInt64,
    anchor_id       UInt64,
    gift_id         UInt64,
    value           UInt64,
    device          String,
    text            String,
    kafka_partition UInt32,
    kafka_offset    UInt64,
    ingested_at     DateTime
) ENGINE = MergeTree
PARTITION BY toYYYYMM(ingested_at)
ORDER BY (type, biz, ts, user_id);
