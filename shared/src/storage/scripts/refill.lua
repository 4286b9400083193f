-- Refills an empty conversation list from the archive (newest first) and marks each
-- event's id as seen, so a later redelivery of the same events does not push them twice.
-- A list that is not empty is left as it is.
--
-- KEYS[1]      list   the conversation's list
-- KEYS[1+i]    seen   event i's seen marker (i from 1)
-- ARGV[1]      ttl    seconds the list and the markers live
-- ARGV[1+i]    event  event i as JSON, newest first
-- Returns 1 when it refilled the list, else 0.

if redis.call('EXISTS', KEYS[1]) == 0 then
  for i = 2, #ARGV do
    redis.call('RPUSH', KEYS[1], ARGV[i])
    redis.call('SET', KEYS[i], '1', 'NX', 'EX', ARGV[1])
  end
  redis.call('EXPIRE', KEYS[1], ARGV[1])
  return 1
end
return 0
