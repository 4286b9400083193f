-- Mirrors a batch of chat events, oldest first, in one round trip: per event, skips an id
-- already seen in its conversation, pushes the event onto its conversation's list and,
-- when the channel table trusts its publisher, counts it for the analytics that
-- ably-stats reads (a trusted change of a message, such as an edit or an append, marks
-- the conversation active but is not another message: analytics count messages); each touched list is trimmed and its TTL refreshed once. With the
-- pub/sub bridge on, each new trusted event's envelope is published on its
-- conversation's channel (a channel, not a key: it comes in ARGV).
--
-- A list's proof (floor, epoch: see refill.lua) says it holds every event after its
-- floor. Pushing keeps that true; a trim drops the least recently pushed entries, which
-- may be newer than entries kept, so it raises the floor to the newest time it dropped.
-- A list that did not exist has no proof: what it held before is gone.
--
-- (time_of and later: times.lua, which comes before this script.)
--
-- KEYS[1]        active         conversations by the time of their last event (zset)
-- KEYS[2]        ai_samples     message:ai timing.ai_duration_ms samples (zset)
-- KEYS[3]        queue_samples  message:ai timing.queue_duration_ms samples (zset)
-- KEYS[4]        minute         this minute's counters (hash)
-- KEYS[5+3i]     seen           event i's seen marker (i from 0)
-- KEYS[6+3i]     list           event i's conversation list
-- KEYS[7+3i]     proof          that list's proof
-- ARGV[1]        ttl            seconds a marker and a list live after their last write
-- ARGV[2]        max            events kept per list
-- ARGV[3]        now            ms since the epoch
-- ARGV[4]        window         ms of history the analytics keep
-- ARGV[5]        stats_ttl      seconds the analytics keys live after their last write
-- ARGV[6]        cap            samples kept per latency series
-- ARGV[7]        lifecycle      channel lifecycle items in the batch
-- ARGV[8]        bridge         1 to publish each new event, else 0
-- ARGV[9+s*i..]  event          event i: id, conversation, json, trusted (1; 2 for a
--                               change of a message; 0 untrusted), type,
--                               ai ms, queue ms, and with the bridge its channel and
--                               envelope (s = 7, or 9 with the bridge)
-- Returns {stored, duplicates}: new events pushed, and events already seen.

local ttl, max, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local window, stats_ttl, cap = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local lifecycle = tonumber(ARGV[7])
local bridge = ARGV[8] == '1'
local stride = bridge and 9 or 7
local stored, dups, counted, warn, viol = 0, 0, 0, 0, 0

local touched = {}
local k = 5
for i = 9, #ARGV, stride do
  local id, conv, json, trust = ARGV[i], ARGV[i+1], ARGV[i+2], ARGV[i+3]
  local etype, ai, queue = ARGV[i+4], ARGV[i+5], ARGV[i+6]
  if redis.call('SET', KEYS[k], '1', 'NX', 'EX', ttl) then
    if not touched[KEYS[k+1]] then
      if redis.call('EXISTS', KEYS[k+1]) == 0 then redis.call('DEL', KEYS[k+2]) end
      touched[KEYS[k+1]] = k + 1
    end
    redis.call('LPUSH', KEYS[k+1], json)
    if trust ~= '0' then
      redis.call('ZADD', KEYS[1], now, conv)
      if trust == '1' then
        if etype == 'sla:warning' then warn = warn + 1 elseif etype == 'sla:violation' then viol = viol + 1 end
        if ai ~= '' then redis.call('ZADD', KEYS[2], now, ai .. '|' .. id) end
        if queue ~= '' then redis.call('ZADD', KEYS[3], now, queue .. '|' .. id) end
        counted = counted + 1
      end
      if bridge and ARGV[i+8] ~= '' then redis.call('PUBLISH', ARGV[i+7], ARGV[i+8]) end
    end
    stored = stored + 1
  else
    dups = dups + 1
  end
  k = k + 3
end
for _, list in pairs(touched) do
  local floor = redis.call('HGET', KEYS[list+1], 'floor')
  if floor then
    for _, entry in ipairs(redis.call('LRANGE', KEYS[list], max, -1)) do
      local at = time_of(entry)
      if not at then floor = false break end
      floor = later(floor, at)
    end
    if floor then
      redis.call('HSET', KEYS[list+1], 'floor', floor)
      redis.call('EXPIRE', KEYS[list+1], ttl)
    else
      redis.call('DEL', KEYS[list+1])
    end
  end
  redis.call('LTRIM', KEYS[list], 0, max - 1)
  redis.call('EXPIRE', KEYS[list], ttl)
end
if counted > 0 or lifecycle > 0 then
  redis.call('HINCRBY', KEYS[4], 'events', counted)
  if warn > 0 then redis.call('HINCRBY', KEYS[4], 'sla:warning', warn) end
  if viol > 0 then redis.call('HINCRBY', KEYS[4], 'sla:violation', viol) end
  if lifecycle > 0 then redis.call('HINCRBY', KEYS[4], 'lifecycle', lifecycle) end
  redis.call('EXPIRE', KEYS[4], stats_ttl)
  for series = 1, 3 do
    redis.call('ZREMRANGEBYSCORE', KEYS[series], '-inf', '(' .. (now - window))
    redis.call('ZREMRANGEBYRANK', KEYS[series], 0, -(cap + 1))
    redis.call('EXPIRE', KEYS[series], stats_ttl)
  end
end
return {stored, dups}
