-- Reads a conversation's cached list and its proof in one step, so that the proof is the
-- one of the entries read (a proof written between two reads could cover entries the
-- first read did not see).
--
-- KEYS[1]  list   the conversation's list
-- KEYS[2]  proof  its proof
-- ARGV[1]  last   the last list index to read
-- Returns {the entries, newest pushed first, {floor, epoch}}.

return {redis.call('LRANGE', KEYS[1], 0, ARGV[1]), redis.call('HMGET', KEYS[2], 'floor', 'epoch')}
