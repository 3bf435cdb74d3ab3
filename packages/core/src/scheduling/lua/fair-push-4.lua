--[[
  Put jobs in their tenant's line for dispatch (at the back, or at the front for a job that had
  already reached the head once, e.g. one coming back from the budget parking lot).
  KEYS[1]  active tenants: zset tenant -> virtual start time of its next job
  KEYS[2]  the tenant's line: list of job ids
  KEYS[3]  the virtual clock (string number)
  KEYS[4]  hash tenant -> virtual finish time of its last dispatched job (idle tenants)
  ARGV[1]  tenant
  ARGV[2]  'back' or 'front'
  ARGV[3..] job ids, in line order (many at once for a batch's rows)
  A tenant that becomes active starts at max(clock, its last finish): it cannot bank credit while
  idle, and cannot jump ahead of what it has already used. All keys share the queue's hash tag.
  Returns the number of jobs put in line.
]]
if ARGV[2] == 'front' then
  -- LPUSH one by one reverses: push from the last so the first ends up at the head.
  for i = #ARGV, 3, -1 do
    redis.call('LPUSH', KEYS[2], ARGV[i])
  end
else
  redis.call('RPUSH', KEYS[2], unpack(ARGV, 3))
end
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  local clock = tonumber(redis.call('GET', KEYS[3]) or '0')
  local finish = tonumber(redis.call('HGET', KEYS[4], ARGV[1]) or '0')
  if finish <= clock then
    redis.call('HDEL', KEYS[4], ARGV[1])
    finish = clock
  end
  redis.call('ZADD', KEYS[1], string.format('%.17g', finish), ARGV[1])
end
return #ARGV - 2
