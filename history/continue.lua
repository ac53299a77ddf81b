-- "Continue watching": unfinished, not hidden items with a resume point,
-- newest first, taken from the timeline.
-- KEYS: t (timeline), p (progress), m (meta)
-- ARGV: how many, biz prefix ("" = all), "1" to refuse when not warm
-- Reply: {"cold"} or {member, value, member, value, ...}
if ARGV[3] == '1' and redis.call('HEXISTS', KEYS[3], 'w') == 0 then return {'cold'} end
local want, pre = tonumber(ARGV[1]), ARGV[2]
local out, got, off, batch = {}, 0, 0, 100
while got < want do
  local r = redis.call('ZREVRANGE', KEYS[1], off, off + batch - 1)
  if #r == 0 then break end
  local vs = redis.call('HMGET', KEYS[2], unpack(r))
  for i = 1, #r do
    local v = vs[i]
    if v and got < want and (pre == '' or string.sub(r[i], 1, #pre) == pre) then
      local pos, fl = string.match(v, '^%d+,(%d+),%d+,(%a*),')
      if pos and tonumber(pos) > 0 and fl == '' then
        out[#out + 1], out[#out + 2] = r[i], v
        got = got + 1
      end
    end
  end
  if #r < batch then break end
  off = off + batch
end
return out
