-- Opens or closes one room. KEYS[1] = {r<id>}:room.
-- ARGV: op ("open" | "close"), caller user id, "1" if admin, anchor id an
-- admin assigns ("0" = keep), now (ms).
-- Anchor rule: the first user to open a room becomes its anchor; after that
-- only the anchor or an admin may open or close it; an admin may name the
-- anchor. Returns {code, ver, anchor_id, opened_at, changed}; code 0 = done,
-- -1 = forbidden, -2 = no such room (close of a room never opened).
local h = redis.call('HMGET', KEYS[1], 'status', 'anchor_id', 'opened_at', 'ver')
local status, anchor, opened, ver = h[1], h[2] or '0', h[3] or '0', tonumber(h[4] or '0')
local op, user, admin, assign = ARGV[1], ARGV[2], ARGV[3] == '1', ARGV[4]
if not status and op == 'close' then
  return {-2, 0, '0', '0', 0}
end
if admin then
  if assign ~= '0' then anchor = assign end
elseif anchor == '0' then
  anchor = user
elseif anchor ~= user then
  return {-1, ver, anchor, opened, 0}
end
local want = op == 'open' and 'open' or 'closed'
if status == want and h[2] == anchor then
  return {0, ver, anchor, opened, 0}
end
if want == 'open' and status ~= 'open' then opened = ARGV[5] end
ver = redis.call('HINCRBY', KEYS[1], 'ver', 1)
redis.call('HSET', KEYS[1], 'status', want, 'anchor_id', anchor, 'opened_at', opened)
return {0, ver, anchor, opened, 1}
