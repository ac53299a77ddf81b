-- Compare-and-set of one user's progress updates. See apply.go for the rules.
-- KEYS: t (timeline), p (progress), q (off-timeline index), d (tombstones), m (meta)
-- ARGV: max entries, finished ratio, finished tail ms, min duration for the
--       tail rule, then 7 per update:
--       member, biz, ts, position, duration, device, play ("1"/"0")
-- Reply: one string per update: "0" (not applied) or "1,<pos>,<dur>" (the
--        stored winner now equals this update, with these effective values).
local maxn, ratio, tail, tailmin = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local ps = redis.call('HGET', KEYS[5], 'ps')
if ps then ps = tonumber(ps) end
local out = {}
for i = 5, #ARGV, 7 do
  local mem, biz, tss, poss, durs, dev, play = ARGV[i], ARGV[i+1], ARGV[i+2], ARGV[i+3], ARGV[i+4], ARGV[i+5], ARGV[i+6]
  local ts = tonumber(tss)
  local res = '0'
  local tomb = 0
  for _, sc in ipairs(redis.call('ZMSCORE', KEYS[4], mem, 'c:0', 'c:' .. biz)) do
    if sc then
      local n = tonumber(sc)
      if n > tomb then tomb = n end
    end
  end
  if ts > tomb then
    local ep, ed, cmp, hidden = poss, durs, 1, false
    local cur = redis.call('HGET', KEYS[2], mem)
    if cur then
      local cts, cpos, cdur, cfl, cdev = string.match(cur, '^(%d+),(%d+),(%d+),(%a*),(.*)$')
      if cts then
        -- play keeps position and duration; an accidental zero keeps them too
        if play == '1' or tonumber(poss) == 0 then ep = cpos end
        if play == '1' or tonumber(durs) == 0 then ed = cdur end
        local a = {ts, tonumber(ep), tonumber(ed)}
        local b = {tonumber(cts), tonumber(cpos), tonumber(cdur)}
        cmp = 0
        for j = 1, 3 do
          if a[j] ~= b[j] then
            if a[j] > b[j] then cmp = 1 else cmp = -1 end
            break
          end
        end
        if cmp == 0 and dev ~= cdev then
          if dev > cdev then cmp = 1 else cmp = -1 end
        end
        -- a hide lasts until the position (or duration) changes
        hidden = string.find(cfl, 'h', 1, true) ~= nil and ep == cpos and ed == cdur
      end
    end
    if cmp >= 0 then
      res = '1,' .. ep .. ',' .. ed
    end
    if cmp > 0 then
      local p, d = tonumber(ep), tonumber(ed)
      local fl = ''
      if d > 0 and (p >= ratio * d or (d >= tailmin and p + tail >= d)) then fl = 'f' end
      if hidden then fl = fl .. 'h' end
      redis.call('HSET', KEYS[2], mem, tss .. ',' .. ep .. ',' .. ed .. ',' .. fl .. ',' .. dev)
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
