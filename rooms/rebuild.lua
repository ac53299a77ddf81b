-- Rebuilds some Kafka partitions' share of one room's ranking after a Redis
-- loss (the users of those partitions: the record key is the user).
-- KEYS: {r<id>}:lb, {r<id>}:lbm, {r<id>}:gd (as in gifts.lua).
-- ARGV[1] = seconds client ids are remembered; ARGV[2] = n, then n pairs
-- (partition, offset ClickHouse holds it up to): the fences f<partition>
-- are set to it; then m, then m pairs (user, score): each user's total in
-- ClickHouse (0 = none: removed); then client gift ids ClickHouse holds
-- ('<user>:<event id>'), claimed so that retries of them do not count.
-- The caller then re-applies, through gifts.lua, what it counted above
-- those offsets. The version jumps to the server clock in µs (or by one),
-- so frames after a loss never carry a version clients saw before it.
-- Returns {new version}.
local i = 2
for _ = 1, tonumber(ARGV[i]) do
  redis.call('HSET', KEYS[2], 'f' .. ARGV[i + 1], ARGV[i + 2])
  i = i + 2
end
i = i + 1
for _ = 1, tonumber(ARGV[i]) do
  local user, score = ARGV[i + 1], tonumber(ARGV[i + 2])
  if score > 0 then
    redis.call('ZADD', KEYS[1], score, user)
  else
    redis.call('ZREM', KEYS[1], user)
  end
  i = i + 2
end
i = i + 1
if i <= #ARGV then
  for k = i, #ARGV do
    redis.call('HSET', KEYS[3], ARGV[k], 'ch')
  end
  redis.call('EXPIRE', KEYS[3], ARGV[1])
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local ver = tonumber(redis.call('HGET', KEYS[2], 'ver') or '0')
ver = math.max(ver + 1, now)
redis.call('HSET', KEYS[2], 'ver', string.format('%.0f', ver))
return {string.format('%.0f', ver)}
