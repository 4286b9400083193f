-- Times of cached entries, put before mirror.lua and refill.lua (crate::storage::scripts):
-- an entry is a chat event's JSON, written `occurred_at` first, so its time is read
-- without decoding it. Times are ISO-8601 of one width, compared byte by byte (Lua's own
-- string comparison follows the server's locale).
--
-- A proof's floor is '' (every event), a time (every event after that millisecond) or
-- an event's position `{time}#{id}` (every event after that one).

-- The time an entry opens with (entries are written occurred_at first), or nil.
local function time_of(entry)
  if string.sub(entry, 1, 16) == '{"occurred_at":"' and string.sub(entry, 41, 41) == '"' then
    return string.sub(entry, 17, 40)
  end
  return nil
end
-- The later of a floor `a` and a time `b`: a time stands for the last position of its
-- millisecond, so it is the later of the two when their times are equal.
local function later(a, b)
  if a == '' then return b end
  for c = 1, #b do
    local x, y = string.byte(a, c), string.byte(b, c)
    if x ~= y then
      if x > y then return a end
      return b
    end
  end
  return b
end

