-- Counts gifts into one room's ranking, each Kafka record once.
-- KEYS: {r<id>}:lb (ZSET user -> value), {r<id>}:lbm (HASH: f<partition> =
-- last offset counted from it, ver), {r<id>}:gd (HASH: user:client event id
-- -> partition:offset of the record that claimed it, and _t: when this
-- generation of claims began, ms), {r<id>}:room, {r<id>}:gd:old (the
-- previous generation).
-- ARGV[1] = ms client ids are remembered (the window), ARGV[2] = now (ms);
-- then per gift, in offset order within each partition: partition, offset,
-- user, value, client event id ('' for server-assigned ids).
-- Claims live in generations: gd takes claims for one window after its
-- first, then becomes gd:old (replacing the one before) and a new gd
-- begins. Each generation expires two windows after it began, set once
-- (issue 26: an expiry pushed back by every claim never came for a busy
-- room), so a claim is remembered at least one window and at most two, and
-- the room holds the claims of at most two windows.
-- A record at or below its partition's fence was counted before (a replay
-- after a crash or rebalance) and is skipped; a second record with a
-- claimed client id is a client retry and is not counted. Returns
-- {counted, ver, pk id of the room, then per gift 1 if it is an original
-- (not a retry)} — the PK script fences on its own.
local window, now = tonumber(ARGV[1]), tonumber(ARGV[2])
local born = redis.call('HGET', KEYS[3], '_t')
if born and now - tonumber(born) >= window then
  redis.call('RENAME', KEYS[3], KEYS[5]) -- keeps its expiry
  born = false
end
local function lookup(field)
  return redis.call('HGET', KEYS[3], field) or redis.call('HGET', KEYS[5], field)
end
local function claim(field, me)
  if not born then
    -- a new generation (or claims a rebuild put back): it expires two
    -- windows from now, once
    redis.call('HSET', KEYS[3], '_t', now)
    redis.call('PEXPIRE', KEYS[3], 2 * window)
    born = now
  end
  redis.call('HSET', KEYS[3], field, me)
end
local counted = 0
local out = {0, 0, ''}
for i = 3, #ARGV, 5 do
  local p, o, user, value, eid = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
  local original = 1
  if eid ~= '' then
    local me, field = p .. ':' .. o, user .. ':' .. eid
    local c = lookup(field)
    if not c then
      claim(field, me)
    elseif c ~= me then
      original = 0
    end
  end
  out[#out + 1] = original
  local fk = 'f' .. p
  local fence = tonumber(redis.call('HGET', KEYS[2], fk) or '-1')
  if tonumber(o) > fence then
    redis.call('HSET', KEYS[2], fk, o)
    if original == 1 then
      redis.call('ZINCRBY', KEYS[1], value, user)
      counted = counted + 1
    end
  end
end
out[1] = counted
if counted > 0 then
  out[2] = redis.call('HINCRBY', KEYS[2], 'ver', 1)
end
out[3] = redis.call('HGET', KEYS[4], 'pk') or ''
return out
