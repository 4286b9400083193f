-- Counts one request in a fixed window. The counter and its expiry are set in one atomic
-- step (PEXPIRE NX), so a counter never outlives its window and never lives without a TTL.
--
-- KEYS[1]  counter  the caller's counter in this limit's scope
-- ARGV[1]  window   ms
-- Returns {count, ms until the window resets}.

local n = redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[1], 'NX')
return {n, redis.call('PTTL', KEYS[1])}
