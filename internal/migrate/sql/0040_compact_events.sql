-- onair.events, compact: 12.7 bytes per event on disk became under 10 on
-- 2 M seeded events (BENCHMARKS.md, "Analytics"). What changed against 0001:
--   * event_id holds the client's id only; '' when the server assigned one.
--     Clients never see server-assigned ids (a 202 carries none), and they
--     were ~13 random characters a row.
--   * kafka_offset is set on one row per Kafka partition per INSERT block:
--     the block's highest offset of that partition; other rows hold 0. The
--     aggregator's exactly-once resume point, max(kafka_offset) per
--     kafka_partition (aggregate/clickhouse.go), is unchanged by this, since a
--     block lands whole or not at all; per-row offsets cost ~4 bytes a row.
--   * ts_ms is an ALIAS of ts plus ts_msec (the milliseconds within the
--     second), not a second copy of the time.
--   * rows are sorted by (type, biz, day, user_id, ts): one user's events of a
--     day sit together, so user_id, kafka_partition (the Kafka key is the
--     user), item_id and device form runs that compress well. A ts range
--     still selects by the primary key (toDate is monotonic), so
--     time-bounded queries read only their days.
--
-- The copy below runs once, at start-up, before the aggregator writes; stop
-- every aggregator of an older version before applying it (an old one would
-- insert the dropped ts_ms column, fail, and retry from Kafka).
CREATE TABLE IF NOT EXISTS {db}.events_compact (
    type            Enum8('progress' = 1, 'play' = 2, 'skip' = 3, 'like' = 4, 'gift' = 5, 'danmaku' = 6),
    biz             Enum8('' = 0, 'audio' = 1, 'video' = 2, 'live' = 3, 'article' = 4, 'comic' = 5, 'radio' = 6),
    ts              DateTime,
    ts_msec         UInt16,
    user_id         UInt64,
    item_id         UInt64,
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
    event_id        String,
    kafka_partition UInt32,
    kafka_offset    UInt64,
    ingested_at     DateTime,
    ts_ms           UInt64 ALIAS toUInt64(ts) * 1000 + ts_msec
) ENGINE = MergeTree
PARTITION BY toYYYYMM(ingested_at)
ORDER BY (type, biz, toDate(ts), user_id, ts);

TRUNCATE TABLE {db}.events_compact;

-- Old rows keep their ids and offsets (0001 did not tell client ids apart).
INSERT INTO {db}.events_compact (type, biz, ts, ts_msec, user_id, item_id, position_ms, duration_ms,
    listened_ms, station_id, room_id, anchor_id, gift_id, value, device, text, event_id,
    kafka_partition, kafka_offset, ingested_at)
SELECT type, biz, ts, toUInt16(ts_ms % 1000), user_id, item_id, position_ms, duration_ms,
    listened_ms, station_id, room_id, anchor_id, gift_id, value, device, text, event_id,
    kafka_partition, kafka_offset, ingested_at
FROM {db}.events;

-- The rollups' views are dropped and made again on the new table: a view
-- follows its source by name on 18.16 but by identity on current releases.
DROP TABLE IF EXISTS {db}.item_plays_hourly_mv;
DROP TABLE IF EXISTS {db}.item_plays_daily_mv;
DROP TABLE IF EXISTS {db}.dau_daily_mv;
DROP TABLE IF EXISTS {db}.room_gifts_daily_mv;

RENAME TABLE {db}.events TO {db}.events_0001, {db}.events_compact TO {db}.events;

DROP TABLE {db}.events_0001;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.item_plays_hourly_mv TO {db}.item_plays_hourly AS
SELECT
    biz,
    toStartOfHour(ts) AS hour,
    item_id,
    countIf(type = 'play') AS plays,
    countIf(type = 'progress') AS reports,
    sumIf(listened_ms, type = 'play') AS listened_ms,
    countIf(type = 'like') AS likes,
    countIf(type = 'skip') AS skips
FROM {db}.events
WHERE type IN ('progress', 'play', 'skip', 'like')
GROUP BY biz, hour, item_id;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.item_plays_daily_mv TO {db}.item_plays_daily AS
SELECT
    biz,
    toDate(ts) AS day,
    item_id,
    countIf(type = 'play') AS plays,
    countIf(type = 'progress') AS reports,
    sumIf(listened_ms, type = 'play') AS listened_ms,
    countIf(type = 'like') AS likes,
    countIf(type = 'skip') AS skips
FROM {db}.events
WHERE type IN ('progress', 'play', 'skip', 'like')
GROUP BY biz, day, item_id;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.dau_daily_mv TO {db}.dau_daily AS
SELECT
    toDate(ts) AS day,
    biz,
    uniqState(user_id) AS users
FROM {db}.events
GROUP BY day, biz;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.room_gifts_daily_mv TO {db}.room_gifts_daily AS
SELECT
    room_id,
    toDate(ts) AS day,
    anchor_id,
    user_id,
    sum(value) AS value,
    count() AS gifts
FROM {db}.events
WHERE type = 'gift'
GROUP BY room_id, day, anchor_id, user_id;
