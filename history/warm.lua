-- Fills one user's Redis keys from ClickHouse, merging with whatever Apply
-- wrote meanwhile (the two maxima of apply.lua), then drops anything a
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
-- ts, pos, dur, flags, posts, device (see apply.lua)
local function parse(v)
  if not v then return nil end
  local a, b, c, d, e, f = string.match(v, '^(%d+),(%d+),(%d+),(%a*),(%d+),(.*)$')
  if not a then return nil end
  return {tonumber(a), tonumber(b), tonumber(c), d, tonumber(e), f}
end
while i + 3 <= #ARGV do
  local mem, sc, val, tl = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  -- What Apply wrote since the loss joins the row by apply.lua's two
  -- maxima: a newer touch (a play, say) must not hide an older position.
  local cur, row = parse(redis.call('HGET', KEYS[2], mem)), parse(val)
  local touch, out = true, val
  if cur and row then
    touch = row[1] > cur[1] or (row[1] == cur[1] and row[6] > cur[6])
    local moved = row[2] > 0 and (row[5] > cur[5] or (row[5] == cur[5] and
      (row[2] > cur[2] or (row[2] == cur[2] and row[3] > cur[3]))))
    out = nil
    if touch or moved then
      local n = cur
      if touch then n[1], n[6] = row[1], row[6] end
      if moved then n[2], n[3], n[4], n[5] = row[2], row[3], row[4], row[5] end
      out = n[1] .. ',' .. n[2] .. ',' .. n[3] .. ',' .. n[4] .. ',' .. n[5] .. ',' .. n[6]
    end
  end
  if out then redis.call('HSET', KEYS[2], mem, out) end
  if touch then
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
