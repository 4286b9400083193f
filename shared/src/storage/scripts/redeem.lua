-- Redeems a resume link in one round trip: counts the attempt exactly as rate_limit.lua
-- does, consumes the link (SET NX: exactly one redeem of a jti ever succeeds) and reads
-- the conversation's newest cached events and their list's proof.
--
-- KEYS[1]  counter  the client's redeem counter
-- KEYS[2]  used     the link's used marker
-- KEYS[3]  list     the conversation's list
-- KEYS[4]  proof    its proof
-- ARGV[1]  window   ms
-- ARGV[2]  max      redeems allowed per window
-- ARGV[3]  used_ttl seconds the used marker lives
-- ARGV[4]  last     the last list index to read
-- Returns {0, count, ms until reset} over the limit (the link is untouched), {1} when the
-- link was used before, {2, newest events, {floor, epoch}} when this call consumed it.

local n = redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[1], 'NX')
if n > tonumber(ARGV[2]) then return {0, n, redis.call('PTTL', KEYS[1])} end
if not redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[3]) then return {1} end
return {2, redis.call('LRANGE', KEYS[3], 0, ARGV[4]), redis.call('HMGET', KEYS[4], 'floor', 'epoch')}
