-- Moves one PK's bar, each Kafka record once. KEYS[1] = {pk<id>}:pk (HASH:
-- room_a, room_b, start, end (ms), bar, winner, ver, f<partition> fences).
-- ARGV: per gift, in offset order within each partition: room, partition,
-- offset, value, append time (ms).
-- The bar is kept in value units: 500 is 50:50, a gift to room_a adds its
-- value (value 200 = 20 points), one to room_b subtracts it; at 1000 room_a
-- wins, at 0 room_b. Gifts appended outside [start, end) or after a winner
-- do not move it. Returns {exists, ver, bar, winner, changed, won}.
local h = redis.call('HMGET', KEYS[1], 'room_a', 'room_b', 'start', 'end', 'bar', 'winner', 'ver')
if not h[1] then return {0, 0, 0, '0', 0, 0} end
local a, b, start, stop = h[1], h[2], tonumber(h[3]), tonumber(h[4])
local bar, winner, ver = tonumber(h[5]), h[6], tonumber(h[7])
local changed, won = 0, 0
for i = 1, #ARGV, 5 do
  local room, p, o, v, at = ARGV[i], ARGV[i + 1], ARGV[i + 2], tonumber(ARGV[i + 3]), tonumber(ARGV[i + 4])
  local fk = 'f' .. p
  local fence = tonumber(redis.call('HGET', KEYS[1], fk) or '-1')
  if tonumber(o) > fence then
    redis.call('HSET', KEYS[1], fk, o)
    if winner == '0' and at >= start and at < stop and (room == a or room == b) then
      if room == a then bar = bar + v else bar = bar - v end
      if bar >= 1000 then
        bar, winner, won = 1000, a, 1
      elseif bar <= 0 then
        bar, winner, won = 0, b, 1
      end
      changed = 1
    end
  end
end
if changed == 1 then
  ver = redis.call('HINCRBY', KEYS[1], 'ver', 1)
  redis.call('HSET', KEYS[1], 'bar', bar, 'winner', winner)
end
return {1, ver, bar, winner, changed, won}
