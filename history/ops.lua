-- User operations on history. See ops.go for the rules.
-- KEYS: t (timeline), p (progress), q (off-timeline index), d (tombstones), m (meta)
-- ARGV: op (the names of ClickHouse's history_ops.op), now (ms), then per op:
--   delete member          -> effective delete time
--   clear  biz prefix ("" = all), watermark member ("c:0" or "c:<biz>") -> effective clear time
--   hide   member          -> "" when there is nothing to hide, else now
--   pause                  -> pause start (kept when already paused)
--   resume                 -> now
local op, now = ARGV[1], tonumber(ARGV[2])
bump_version() -- ops are rare: each counts as a change
local function ts_of(v)
  if not v then return 0 end
  return tonumber(string.match(v, '^(%d+),') or '0')
end
-- the effective time is never below what is stored, so a report dated a
-- little in the future (clock skew) cannot outlive the delete
local function bump(mem, t)
  local cur = redis.call('ZSCORE', KEYS[4], mem)
  if cur and tonumber(cur) > t then t = tonumber(cur) end
  redis.call('ZADD', KEYS[4], t, mem)
  return t
end
local function prune()
  redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', '(' .. (now - ARGV[#ARGV]))
end
if op == 'delete' then
  local mem = ARGV[3]
  local t = math.max(now, ts_of(redis.call('HGET', KEYS[2], mem)))
  redis.call('ZREM', KEYS[1], mem)
  redis.call('ZREM', KEYS[3], mem)
  redis.call('HDEL', KEYS[2], mem)
  t = bump(mem, t)
  prune()
  return tostring(t)
elseif op == 'clear' then
  local pre, wm = ARGV[3], ARGV[4]
  local t = now
  for _, key in ipairs({KEYS[1], KEYS[3]}) do
    local all = redis.call('ZRANGE', key, 0, -1)
    local rm = {}
    for _, mem in ipairs(all) do
      if pre == '' or string.sub(mem, 1, #pre) == pre then rm[#rm + 1] = mem end
    end
    for i = 1, #rm, 500 do
      local chunk = {unpack(rm, i, math.min(i + 499, #rm))}
      for _, v in ipairs(redis.call('HMGET', KEYS[2], unpack(chunk))) do
        local vt = ts_of(v)
        if vt > t then t = vt end
      end
      redis.call('ZREM', key, unpack(chunk))
      redis.call('HDEL', KEYS[2], unpack(chunk))
    end
  end
  t = bump(wm, t)
  -- item tombstones under the watermark are redundant
  local tombs = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', t)
  for _, mem in ipairs(tombs) do
    if string.sub(mem, 1, 2) ~= 'c:' and (pre == '' or string.sub(mem, 1, #pre) == pre) then
      redis.call('ZREM', KEYS[4], mem)
    end
  end
  prune()
  return tostring(t)
elseif op == 'hide' then
  local mem = ARGV[3]
  local v = redis.call('HGET', KEYS[2], mem)
  if not v then return '' end
  local head, fl, dev = string.match(v, '^(%d+,%d+,%d+,)(%a*),(.*)$')
  if not head then return '' end
  if not string.find(fl, 'h', 1, true) then
    redis.call('HSET', KEYS[2], mem, head .. fl .. 'h,' .. dev)
  end
  return tostring(math.max(now, ts_of(v)))
elseif op == 'pause' then
  local ps = redis.call('HGET', KEYS[5], 'ps')
  if ps then return ps end
  redis.call('HSET', KEYS[5], 'ps', ARGV[2])
  return ARGV[2]
elseif op == 'resume' then
  redis.call('HDEL', KEYS[5], 'ps')
  return ARGV[2]
end
return redis.error_reply('unknown op ' .. op)
