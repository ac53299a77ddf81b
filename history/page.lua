-- One page of a user's timeline, newest first.
-- KEYS: t (timeline), p (progress), m (meta)
-- ARGV: max score ("+inf" on the first page), cursor member ("" on the first
--       page), how many to return, biz prefix ("" = all, else e.g. "1:"),
--       "1" to refuse when the user is not warm
-- Reply: {"cold"} or {trimmed ("1"/"0"), member, score, value, member, ...}
local meta = redis.call('HMGET', KEYS[3], 'w', 'x')
if ARGV[5] == '1' and not meta[1] then return {'cold'} end
local out = {meta[2] and '1' or '0'}
local maxs, cm, want, pre = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
local cs = tonumber(maxs)
local batch = want + 1
if pre ~= '' then batch = want * 4 end
local off, got = 0, 0
while got < want do
  local r = redis.call('ZREVRANGEBYSCORE', KEYS[1], maxs, '-inf', 'WITHSCORES', 'LIMIT', off, batch)
  local ms, ss = {}, {}
  for i = 1, #r, 2 do
    local mem, sc = r[i], r[i + 1]
    if (cm == '' or tonumber(sc) < cs or mem < cm) and (pre == '' or string.sub(mem, 1, #pre) == pre) then
      ms[#ms + 1], ss[#ss + 1] = mem, sc
    end
  end
  if #ms > 0 then
    local vs = redis.call('HMGET', KEYS[2], unpack(ms))
    for i = 1, #ms do
      if vs[i] and got < want then
        out[#out + 1], out[#out + 2], out[#out + 3] = ms[i], ss[i], vs[i]
        got = got + 1
      end
    end
  end
  if #r < 2 * batch then break end
  off = off + batch
end
return out
