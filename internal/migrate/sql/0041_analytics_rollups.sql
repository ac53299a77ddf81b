-- Rollups for per-user and per-station questions (docs/analytics.md), kept
-- by materialized views on events like 0004's: each view runs inside the
-- INSERT into events, so each counts every event exactly as often as events
-- holds it: once. Buckets are days of the client time ts, in the server's
-- time zone. Read Summing tables with sum(...) GROUP BY.

-- Per user, day and business line: play events, the time they report
-- listened, progress reports, and every event of the biz.
CREATE TABLE IF NOT EXISTS {db}.user_daily (
    user_id     UInt64,
    day         Date,
    biz         Enum8('' = 0, 'audio' = 1, 'video' = 2, 'live' = 3, 'article' = 4, 'comic' = 5, 'radio' = 6),
    events      UInt64,
    plays       UInt64,
    reports     UInt64,
    listened_ms UInt64
) ENGINE = SummingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (user_id, day, biz);

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.user_daily_mv TO {db}.user_daily AS
SELECT
    user_id,
    toDate(ts) AS day,
    biz,
    count() AS events,
    countIf(type = 'play') AS plays,
    countIf(type = 'progress') AS reports,
    sumIf(listened_ms, type = 'play') AS listened_ms
FROM {db}.events
GROUP BY user_id, day, biz;

-- Per user, day and item: what a user did with each item. This is the
-- affinity by biz and item that needs no catalog.
CREATE TABLE IF NOT EXISTS {db}.user_item_daily (
    user_id     UInt64,
    day         Date,
    biz         Enum8('' = 0, 'audio' = 1, 'video' = 2, 'live' = 3, 'article' = 4, 'comic' = 5, 'radio' = 6),
    item_id     UInt64,
    plays       UInt64,
    listened_ms UInt64,
    likes       UInt64,
    skips       UInt64
) ENGINE = SummingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (user_id, day, biz, item_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.user_item_daily_mv TO {db}.user_item_daily AS
SELECT
    user_id,
    toDate(ts) AS day,
    biz,
    item_id,
    countIf(type = 'play') AS plays,
    sumIf(listened_ms, type = 'play') AS listened_ms,
    countIf(type = 'like') AS likes,
    countIf(type = 'skip') AS skips
FROM {db}.events
WHERE type IN ('play', 'like', 'skip')
GROUP BY user_id, day, biz, item_id;

-- Per smart-radio station, day and item: plays, skips and time listened of
-- play/skip events that carry a station_id.
CREATE TABLE IF NOT EXISTS {db}.station_daily (
    station_id  UInt64,
    day         Date,
    biz         Enum8('' = 0, 'audio' = 1, 'video' = 2, 'live' = 3, 'article' = 4, 'comic' = 5, 'radio' = 6),
    item_id     UInt64,
    plays       UInt64,
    skips       UInt64,
    listened_ms UInt64
) ENGINE = SummingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (station_id, day, biz, item_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.station_daily_mv TO {db}.station_daily AS
SELECT
    station_id,
    toDate(ts) AS day,
    biz,
    item_id,
    countIf(type = 'play') AS plays,
    countIf(type = 'skip') AS skips,
    sumIf(listened_ms, type = 'play') AS listened_ms
FROM {db}.events
WHERE type IN ('play', 'skip') AND station_id != 0
GROUP BY station_id, day, biz, item_id;

-- Per user, tag or category, and day: plays, time listened and skips of the
-- items carrying that tag / in that category (CATALOG-CONTRACT: radio reads
-- it with sum(...) GROUP BY user_id, kind, key). The catalog joins when the
-- event is inserted: an event of an item not in onair.catalog yet is not
-- counted here (user_item_daily has it; docs/analytics.md shows the
-- read-time join that re-scores history after a retag).
CREATE TABLE IF NOT EXISTS {db}.user_affinity (
    user_id     UInt64,
    kind        Enum8('tag' = 1, 'category' = 2),
    key         String,
    day         Date,
    plays       UInt64,
    listened_ms UInt64,
    skips       UInt64
) ENGINE = SummingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (user_id, kind, key, day);

-- Two steps, because on 18.16 an ARRAY JOIN cannot follow a JOIN in one
-- view and a view's TO table does not trigger views of its own: the first
-- view joins each play/skip with its item's latest catalog row into a Null
-- table (nothing stored); the next two read FROM that view (which 18.16 and
-- current releases both cascade) and fan out to tags and the category. Each
-- INSERT into events reads the catalog once (argMax over it): cheap for a
-- catalog of up to ~10^5 items.
CREATE TABLE IF NOT EXISTS {db}.user_affinity_feed (
    user_id     UInt64,
    day         Date,
    plays       UInt64,
    listened_ms UInt64,
    skips       UInt64,
    category    String,
    tags        Array(String)
) ENGINE = Null;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.user_affinity_feed_mv TO {db}.user_affinity_feed AS
SELECT
    user_id,
    toDate(ts) AS day,
    toUInt64(type = 'play') AS plays,
    if(type = 'play', listened_ms, 0) AS listened_ms,
    toUInt64(type = 'skip') AS skips,
    category,
    tags
FROM {db}.events
ANY INNER JOIN
(
    SELECT biz, item_id, argMax(category, version) AS category, argMax(tags, version) AS tags
    FROM {db}.catalog
    GROUP BY biz, item_id
) USING (biz, item_id)
WHERE type IN ('play', 'skip');

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.user_affinity_tag_mv TO {db}.user_affinity AS
SELECT user_id, CAST('tag' AS Enum8('tag' = 1, 'category' = 2)) AS kind, tag AS key, day, plays, listened_ms, skips
FROM {db}.user_affinity_feed_mv
ARRAY JOIN tags AS tag;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.user_affinity_category_mv TO {db}.user_affinity AS
SELECT user_id, CAST('category' AS Enum8('tag' = 1, 'category' = 2)) AS kind, category AS key, day, plays, listened_ms, skips
FROM {db}.user_affinity_feed_mv
WHERE category != '';
