-- Rollups for analysts, kept up to date by materialized views on events.
-- A view runs on every block inserted into events, so each rollup sees each
-- event exactly as often as events does: once. Rows are bucketed by the
-- client time ts in the server's time zone; a late event (up to 30 days old)
-- adds to its old bucket. Summing/Aggregating tables merge lazily: read them
-- with sum(...) / uniqMerge(...) and GROUP BY, never the raw rows.
-- See docs/analytics.md for columns, rules and example queries.

-- Per item and hour: plays = play events, reports = progress events,
-- listened_ms = sum of play events' listened_ms, likes, skips. Sorted by
-- biz then time, the order of the leaderboards' "top items of this hour".
CREATE TABLE IF NOT EXISTS {db}.item_plays_hourly (
    biz         Enum8('' = 0, 'audio' = 1, 'video' = 2, 'live' = 3, 'article' = 4, 'comic' = 5, 'radio' = 6),
    hour        DateTime,
    item_id     UInt64,
    plays       UInt64,
    reports     UInt64,
    listened_ms UInt64,
    likes       UInt64,
    skips       UInt64
) ENGINE = SummingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (biz, hour, item_id);

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

-- The same per day.
CREATE TABLE IF NOT EXISTS {db}.item_plays_daily (
    biz         Enum8('' = 0, 'audio' = 1, 'video' = 2, 'live' = 3, 'article' = 4, 'comic' = 5, 'radio' = 6),
    day         Date,
    item_id     UInt64,
    plays       UInt64,
    reports     UInt64,
    listened_ms UInt64,
    likes       UInt64,
    skips       UInt64
) ENGINE = SummingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (biz, day, item_id);

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

-- Daily active users per biz: a user is active in a biz on a day when they
-- sent any event of that biz (progress, play, skip, like) that day. Gifts
-- and danmaku carry no biz: they land in the biz = '' row ("live rooms").
-- There is no "all" row because none is needed: uniq states merge as a set
-- union, so uniqMerge(users) over all of a day's rows counts every active
-- user once however many business lines they used.
CREATE TABLE IF NOT EXISTS {db}.dau_daily (
    day   Date,
    biz   Enum8('' = 0, 'audio' = 1, 'video' = 2, 'live' = 3, 'article' = 4, 'comic' = 5, 'radio' = 6),
    users AggregateFunction(uniq, UInt64)
) ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (day, biz);

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.dau_daily_mv TO {db}.dau_daily AS
SELECT
    toDate(ts) AS day,
    biz,
    uniqState(user_id) AS users
FROM {db}.events
GROUP BY day, biz;

-- Gifts per room, anchor and giving user per day: value = sum of the gifts'
-- value, gifts = how many gifts. Sorted by room first, for the per-room
-- rankings.
CREATE TABLE IF NOT EXISTS {db}.room_gifts_daily (
    room_id   UInt64,
    day       Date,
    anchor_id UInt64,
    user_id   UInt64,
    value     UInt64,
    gifts     UInt64
) ENGINE = SummingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (room_id, day, anchor_id, user_id);

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
