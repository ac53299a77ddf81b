-- Compare-and-set of one user's progress updates. See apply.go for the rules.
-- KEYS: t (timeline), p (progress), q (off-timeline index), d (tombstones), m (meta)
-- ARGV: max entries, finished ratio, finished tail ms, finished tail min ms,
--       then 7 per update: member, biz, ts, device, position, duration, posts
--       (posts = ts of the report that gave the position; 0 = no position)
-- Stored value: ts,pos,dur,flags,posts,device
-- Reply: one string per update: "0" (not applied) or "1,<ts>,<pos>,<dur>,<device>"
--        (the stored state, which this update now is part of).
local maxn, ratio, tail, tailmin = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local ps = redis.call('HGET', KEYS[5], 'ps')
if ps then ps = tonumber(ps) end
local out = {}
for i = 5, #ARGV, 7 do
  local mem, biz, tss, dev = ARGV[i], ARGV[i+1], ARGV[i+2], ARGV[i+3]
  local pos, dur, posts = tonumber(ARGV[i+4]), tonumber(ARGV[i+5]), tonumber(ARGV[i+6])
  local ts = tonumber(tss)
  local res = '0'
  local tomb = 0
  for _, sc in ipairs(redis.call('ZMSCORE', KEYS[4], mem, 'c:0', 'c:' .. biz)) do
    if sc then
      local n = tonumber(sc)
      if n > tomb then tomb = n end
    end
  end
  -- a position reported before a delete/clear is as dead as the item was
  if posts <= tomb then pos, posts = 0, 0 end
  if ts > tomb then
    -- stored state: touch (cts, cdev) and position (cpos, cdur, cposts)
    local cts, cpos, cdur, cfl, cposts, cdev = -1, 0, 0, '', 0, ''
    local cur = redis.call('HGET', KEYS[2], mem)
    if cur then
      local a, b, c, d, e, f = string.match(cur, '^(%d+),(%d+),(%d+),(%a*),(%d+),(.*)$')
      if a then
        cts, cpos, cdur, cfl, cposts, cdev = tonumber(a), tonumber(b), tonumber(c), d, tonumber(e), f
      end
    end
    -- two independent maxima: the newest report decides updated_at and
    -- device; the newest report with a position decides the position
    local touch = ts > cts or (ts == cts and dev > cdev)
    local moved = posts > 0 and pos > 0 and
      (posts > cposts or (posts == cposts and (pos > cpos or (pos == cpos and dur > cdur))))
    local nts, ndev, npos, ndur, nposts = cts, cdev, cpos, cdur, cposts
    if touch then nts, ndev = ts, dev end
    if moved then
      npos, nposts = pos, posts
      if dur > 0 then ndur = dur end
    end
    if cts < 0 and not moved and dur > 0 then ndur = dur end
    if touch or moved then
      local fl = ''
      if ndur > 0 and (npos >= ratio * ndur or (ndur >= tailmin and npos + tail >= ndur)) then fl = 'f' end
      -- a hide lasts until the position (or duration) changes
      if string.find(cfl, 'h', 1, true) and npos == cpos and ndur == cdur then fl = fl .. 'h' end
      redis.call('HSET', KEYS[2], mem, nts .. ',' .. npos .. ',' .. ndur .. ',' .. fl .. ',' .. nposts .. ',' .. ndev)
      if touch then
        if ps and ts >= ps then
          -- paused: keep the resume point but stay off the timeline
          if not redis.call('ZSCORE', KEYS[1], mem) then
            redis.call('ZADD', KEYS[3], tss, mem)
          end
        else
          redis.call('ZADD', KEYS[1], tss, mem)
          redis.call('ZREM', KEYS[3], mem)
        end
      end
    end
    -- applied: this update is now part of what is stored (it won, or a
    -- retry finds its own effect), so ClickHouse gets the stored state
    if touch or moved or (ts == nts and dev == ndev) or (posts > 0 and posts == nposts and pos == npos) then
      res = '1,' .. nts .. ',' .. npos .. ',' .. ndur .. ',' .. ndev
    end
  end
  out[#out + 1] = res
end
-- cap both indexes; progress entries go with them
for _, key in ipairs({KEYS[1], KEYS[3]}) do
  local n = redis.call('ZCARD', key)
  if n > maxn then
    local old = redis.call('ZRANGE', key, 0, n - maxn - 1)
    for _, mem in ipairs(old) do
      redis.call('HDEL', KEYS[2], mem)
    end
    redis.call('ZREMRANGEBYRANK', key, 0, n - maxn - 1)
    if key == KEYS[1] then
      redis.call('HSET', KEYS[5], 'x', '1')
    end
  end
end
return out
