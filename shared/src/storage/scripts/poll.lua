-- A poll in one round trip: counts the caller's request exactly as rate_limit.lua does
-- and, only within the limit, reads the conversation's whole cached list and its proof.
--
-- KEYS[1]  counter  the caller's poll counter for this conversation
-- KEYS[2]  list     the conversation's list
-- KEYS[3]  proof    its proof
-- ARGV[1]  window   ms
-- ARGV[2]  max      polls allowed per window
-- Returns {count, ms until the window resets, the list, {floor, epoch}} (list and proof
-- empty when over the limit).

local n = redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[1], 'NX')
local ttl = redis.call('PTTL', KEYS[1])
if n > tonumber(ARGV[2]) then return {n, ttl, {}, {}} end
return {n, ttl, redis.call('LRANGE', KEYS[2], 0, -1), redis.call('HMGET', KEYS[3], 'floor', 'epoch')}
