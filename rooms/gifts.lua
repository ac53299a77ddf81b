-- Counts gifts into one room's ranking, each Kafka record once.
-- KEYS: {r<id>}:lb (ZSET user -> value), {r<id>}:lbm (HASH: f<partition> =
-- last offset counted from it, ver), {r<id>}:gd (HASH: user:client event id
-- -> partition:offset of the record that claimed it), {r<id>}:room.
-- ARGV[1] = seconds client ids are remembered; then per gift, in offset
-- order within each partition: partition, offset, user, value, client
-- event id ('' for server-assigned ids).
-- A record at or below its partition's fence was counted before (a replay
-- after a crash or rebalance) and is skipped; a second record with a
-- claimed client id is a client retry and is not counted. Returns
-- {counted, ver, pk id of the room, then per gift 1 if it is an original
-- (not a retry)} — the PK script fences on its own.
local counted, claimed = 0, false
local out = {0, 0, ''}
for i = 2, #ARGV, 5 do
  local p, o, user, value, eid = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
  local original = 1
  if eid ~= '' then
    local me, field = p .. ':' .. o, user .. ':' .. eid
    local c = redis.call('HGET', KEYS[3], field)
    if not c then
      redis.call('HSET', KEYS[3], field, me)
      claimed = true
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
if claimed then redis.call('EXPIRE', KEYS[3], ARGV[1]) end
out[1] = counted
if counted > 0 then
  out[2] = redis.call('HINCRBY', KEYS[2], 'ver', 1)
end
out[3] = redis.call('HGET', KEYS[4], 'pk') or ''
return out
