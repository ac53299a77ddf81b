-- Compare-and-set of one user's progress updates. See apply.go for the rules.
-- KEYS: t (timeline), p (progress), q (off-timeline index), d (tombstones), m (meta)
-- ARGV: max entries, finished ratio, finished tail ms, finished tail min ms,
--       then 7 per update: member, biz, ts, device, position, duration, posts
--       (posts = ts of the report that gave the position; 0 = no position)
-- Stored value: ts,pos,dur,flags,posts,device
-- Reply: one string per update: "0" (not applied) or "1,<ts>,<pos>,<dur>,<posts>,<device>"
--        (the stored state, which this update now is part of); "2,..." when
--        the user is not warm, "3,..." for an entry new in a trimmed user.
--
-- Reads and writes are batched (one HMGET, one HSET, one ZADD per call):
-- redis.call is the dominant cost of a script, not the Lua around it.
local maxn, ratio, tail, tailmin = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local meta = redis.call('HMGET', KEYS[5], 'ps', 'w', 'x')
local ps = meta[1]
if ps then ps = tonumber(ps) end
-- The stored state may lack older state that ClickHouse holds when the
-- user is not warm ('2', every entry: never read, or the keys were lost;
-- only the second matters), or for an item new in a trimmed user ('3').
local userTag, newTag = '1', '1'
if not meta[2] then userTag, newTag = '2', '2' elseif meta[3] == '1' then newTag = '3' end
-- tombstones and the off-timeline index are rare: look them up per entry
-- only when they exist at all
local hasTomb = redis.call('EXISTS', KEYS[4]) == 1
local hasQ = redis.call('EXISTS', KEYS[3]) == 1
local CHUNK = 1000 -- stays far below Lua's unpack limit

local function chunked(fn, list)
  for i = 1, #list, CHUNK do
    fn(unpack(list, i, math.min(i + CHUNK - 1, #list)))
  end
end

-- current state of every member named, by one HMGET
local mems = {}
for i = 5, #ARGV, 7 do mems[#mems + 1] = ARGV[i] end
local state, existed = {}, {}
for c = 1, #mems, CHUNK do
  local last = math.min(c + CHUNK - 1, #mems)
  local vals = redis.call('HMGET', KEYS[2], unpack(mems, c, last))
  for j = c, last do
    local v = vals[j - c + 1]
    if v and not state[mems[j]] then
      local a, b, cc, d, e, f = string.match(v, '^(%d+),(%d+),(%d+),(%a*),(%d+),(.*)$')
      if a then
        state[mems[j]] = {tonumber(a), tonumber(b), tonumber(cc), d, tonumber(e), f}
        existed[mems[j]] = true
      end
    end
  end
end

local out, dirty, scores = {}, {}, {}
local order = {}
for i = 5, #ARGV, 7 do
  local mem, biz, tss, dev = ARGV[i], ARGV[i+1], ARGV[i+2], ARGV[i+3]
  local pos, dur, posts = tonumber(ARGV[i+4]), tonumber(ARGV[i+5]), tonumber(ARGV[i+6])
  local ts = tonumber(tss)
  local res = '0'
  local tomb = 0
  if hasTomb then
    for _, sc in ipairs(redis.call('ZMSCORE', KEYS[4], mem, 'c:0', 'c:' .. biz)) do
      if sc then
        local n = tonumber(sc)
        if n > tomb then tomb = n end
      end
    end
  end
  -- a position reported before a delete/clear is as dead as the item was
  if posts <= tomb then pos, posts = 0, 0 end
  if ts > tomb then
    -- stored state: touch (cts, cdev) and position (cpos, cdur, cposts)
    local cts, cpos, cdur, cfl, cposts, cdev = -1, 0, 0, '', 0, ''
    local cur = state[mem]
    if cur then cts, cpos, cdur, cfl, cposts, cdev = cur[1], cur[2], cur[3], cur[4], cur[5], cur[6] end
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
      state[mem] = {nts, npos, ndur, fl, nposts, ndev}
      if not dirty[mem] then order[#order + 1] = mem end
      dirty[mem] = true
      if touch then
        if ps and ts >= ps then
          -- paused: keep the resume point but stay off the timeline
          if not scores[mem] and not redis.call('ZSCORE', KEYS[1], mem) then
            redis.call('ZADD', KEYS[3], tss, mem)
            hasQ = true
          end
        else
          scores[mem] = tss
        end
      end
    end
    -- applied: this update is now part of what is stored (it won, or a
    -- retry finds its own effect), so ClickHouse gets the stored state
    if touch or moved or (ts == nts and dev == ndev) or (posts > 0 and posts == nposts and pos == npos) then
      local tag = userTag
      if not existed[mem] then tag = newTag end
      res = tag .. ',' .. nts .. ',' .. npos .. ',' .. ndur .. ',' .. nposts .. ',' .. ndev
    end
  end
  out[#out + 1] = res
end

-- write back: one HSET, one ZADD (and one ZREM) for the whole call
local hset, zadd, zrem = {}, {}, {}
for _, mem in ipairs(order) do
  local s = state[mem]
  hset[#hset + 1] = mem
  hset[#hset + 1] = s[1] .. ',' .. s[2] .. ',' .. s[3] .. ',' .. s[4] .. ',' .. s[5] .. ',' .. s[6]
  if scores[mem] then
    zadd[#zadd + 1] = scores[mem]
    zadd[#zadd + 1] = mem
    zrem[#zrem + 1] = mem
  end
end
if #hset > 0 then chunked(function(...) redis.call('HSET', KEYS[2], ...) end, hset) end
if #zadd > 0 then chunked(function(...) redis.call('ZADD', KEYS[1], ...) end, zadd) end
if hasQ and #zrem > 0 then chunked(function(...) redis.call('ZREM', KEYS[3], ...) end, zrem) end

-- cap both indexes; progress entries go with them
local capped = {KEYS[1]}
if hasQ then capped[2] = KEYS[3] end
for _, key in ipairs(capped) do
  local n = redis.call('ZCARD', key)
  if n > maxn then
    local old = redis.call('ZRANGE', key, 0, n - maxn - 1)
    chunked(function(...) redis.call('HDEL', KEYS[2], ...) end, old)
    redis.call('ZREMRANGEBYRANK', key, 0, n - maxn - 1)
    if key == KEYS[1] then
      redis.call('HSET', KEYS[5], 'x', '1')
    end
  end
end
if #order > 0 then bump_version() end
return out
