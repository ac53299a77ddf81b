-- Writes one room's hot copy as the registry (PostgreSQL) has it.
-- KEYS[1] = {r<id>}:room. ARGV: status ("open" | "closed"), anchor_id,
-- opened_at (ms), ver, title, category, cover.
-- ver is the room's version in PostgreSQL (one more per status change): a
-- write whose ver is not above the hash's changes nothing, so a rebuild
-- that read PostgreSQL before a later change cannot undo that change.
-- Returns {ver, status, anchor_id, opened_at, changed}; changed = 1 when
-- the status differs from what the hash held (a room frame is due).
local h = redis.call('HMGET', KEYS[1], 'ver', 'status', 'anchor_id', 'opened_at')
local cur = tonumber(h[1] or '-1')
if tonumber(ARGV[4]) <= cur then
  return {cur, h[2] or '', h[3] or '0', h[4] or '0', 0}
end
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'anchor_id', ARGV[2], 'opened_at', ARGV[3], 'ver', ARGV[4],
  'title', ARGV[5], 'category', ARGV[6], 'cover', ARGV[7])
local changed = 0
if h[2] ~= ARGV[1] then changed = 1 end
return {tonumber(ARGV[4]), ARGV[1], ARGV[2], ARGV[3], changed}
