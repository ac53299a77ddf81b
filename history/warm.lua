-- Fills one user's Redis keys from ClickHouse, merging with whatever Apply
-- wrote meanwhile (newer ts wins, as in apply.lua), then drops anything a
-- tombstone covers. Runs once: a user already warm is left alone.
-- KEYS: t (timeline), p (progress), q (off-timeline index), d (tombstones), m (meta)
-- ARGV: max entries, pause state ("" unknown, "resume", or pause start ms),
--       trimmed ("1"/"0"), tombstone count N, N pairs (member, ts),
--       then 4 per entry: member, score, value, in timeline ("1"/"0")
-- Reply: 1 when it warmed, 0 when the user was already warm.
if redis.call('HEXISTS', KEYS[5], 'w') == 1 then return 0 end
local maxn, pst, trimmed, n = tonumber(ARGV[1]), ARGV[2], ARGV[3], tonumber(ARGV[4])
if pst == 'resume' then
  redis.call('HDEL', KEYS[5], 'ps')
elseif pst ~= '' then
  redis.call('HSETNX', KEYS[5], 'ps', pst)
end
local i = 5
for _ = 1, n do
  local mem, ts = ARGV[i], tonumber(ARGV[i + 1])
  local cur = redis.call('ZSCORE', KEYS[4], mem)
  if not cur or tonumber(cur) < ts then redis.call('ZADD', KEYS[4], ts, mem) end
  i = i + 2
end
local function ts_of(v)
  if not v then return nil end
  return tonumber(string.match(v, '^(%d+),') or '0')
end
while i + 3 <= #ARGV do
  local mem, sc, val, tl = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local cts = ts_of(redis.call('HGET', KEYS[2], mem))
  if not cts or cts < ts_of(val) then
    redis.call('HSET', KEYS[2], mem, val)
    if tl == '1' then
      redis.call('ZADD', KEYS[1], sc, mem)
      redis.call('ZREM', KEYS[3], mem)
    elseif not redis.call('ZSCORE', KEYS[1], mem) then
      redis.call('ZADD', KEYS[3], sc, mem)
    end
  end
  i = i + 4
end
-- what Apply wrote while Redis had lost the tombstones
for _, key in ipairs({KEYS[1], KEYS[3]}) do
  for _, mem in ipairs(redis.call('ZRANGE', key, 0, -1)) do
    local tomb = 0
    for _, s in ipairs(redis.call('ZMSCORE', KEYS[4], mem, 'c:0', 'c:' .. string.sub(mem, 1, 1))) do
      if s and tonumber(s) > tomb then tomb = tonumber(s) end
    end
    local ts = ts_of(redis.call('HGET', KEYS[2], mem))
    if not ts or ts <= tomb then
      redis.call('ZREM', key, mem)
      redis.call('HDEL', KEYS[2], mem)
    end
  end
end
for _, key in ipairs({KEYS[1], KEYS[3]}) do
  local c = redis.call('ZCARD', key)
  if c > maxn then
    for _, mem in ipairs(redis.call('ZRANGE', key, 0, c - maxn - 1)) do
      redis.call('HDEL', KEYS[2], mem)
    end
    redis.call('ZREMRANGEBYRANK', key, 0, c - maxn - 1)
    if key == KEYS[1] then trimmed = '1' end
  end
end
if trimmed == '1' then redis.call('HSET', KEYS[5], 'x', '1') end
redis.call('HSET', KEYS[5], 'w', '1')
bump_version()
return 1
