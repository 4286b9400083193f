-- Proves a conversation's list from a read of the archive: every event the archive held
-- after `floor` when it was read (newest first) is merged into the list unless an
-- identical entry is there, so events a failed cache write never pushed come back.
-- Events mirrored since the read are pushed by their own mirror, or moved the epoch on
-- (see crate::storage::epoch). The proof (floor, epoch) then says: this list holds every
-- event after `floor`, as long as the epoch is still `epoch`. The trim raises the floor
-- to the newest time it dropped, as mirror.lua does. Each merged event's id is marked as
-- seen, so that a redelivery does not push it again.
--
-- (time_of and later: times.lua, which comes before this script.)
--
-- KEYS[1]      list   the conversation's list
-- KEYS[2]      proof  its proof
-- KEYS[2+i]    seen   event i's seen marker (i from 1)
-- ARGV[1]      ttl    seconds the list, its proof and the markers live
-- ARGV[2]      max    events kept in the list
-- ARGV[3]      epoch  the epoch the archive was read in
-- ARGV[4]      floor  the read holds every event after this time ('' for all of them)
-- ARGV[4+i]    event  event i as JSON, newest first
-- Returns 1 when the list is proven, else 0 (nothing to prove, or an entry it cannot date).

local ttl, max = ARGV[1], tonumber(ARGV[2])

local present = {}
for _, entry in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do present[entry] = true end
for i = 5, #ARGV do
  if not present[ARGV[i]] then
    redis.call('RPUSH', KEYS[1], ARGV[i])
    present[ARGV[i]] = true
  end
  redis.call('SET', KEYS[i - 2], '1', 'NX', 'EX', ttl)
end
local floor = ARGV[4]
for _, entry in ipairs(redis.call('LRANGE', KEYS[1], max, -1)) do
  local at = time_of(entry)
  if not at then floor = false break end
  floor = later(floor, at)
end
redis.call('LTRIM', KEYS[1], 0, max - 1)
if floor and redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('HSET', KEYS[2], 'floor', floor, 'epoch', ARGV[3])
  redis.call('EXPIRE', KEYS[2], ttl)
  redis.call('EXPIRE', KEYS[1], ttl)
  return 1
end
redis.call('DEL', KEYS[2])
return 0
