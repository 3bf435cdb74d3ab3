-- Append `state@at` to a job's timeline (field `timeline`: entries joined by commas, oldest
-- first), in the same step as the move it records. Kept under 4,000 characters (about a hundred
-- moves): past that the oldest entries after the first (the creation) are dropped, so a job that
-- is retried without end cannot grow its record without end.
local function append_timeline(key, state, at)
  local entry = state .. '@' .. (at or '')
  local timeline = redis.call('HGET', key, 'timeline')
  if not timeline then
    timeline = entry
  else
    timeline = timeline .. ',' .. entry
  end
  if #timeline > 4000 then
    local first = string.find(timeline, ',', 1, true)
    local cut = string.find(timeline, ',', #timeline - 3900, true)
    if first and cut and cut > first then
      timeline = string.sub(timeline, 1, first) .. string.sub(timeline, cut + 1)
    end
  end
  redis.call('HSET', key, 'timeline', timeline)
end
