--[[
  Forget a parking group once it is empty, in the same step as the check (a job parked meanwhile
  keeps its group listed).
  KEYS[1]  the group's parked jobs (zset)
  KEYS[2]  the set of groups with parked jobs
  ARGV[1]  the group's signature (`<tenant>|<batch or ->`)
  Returns  1 forgotten, 0 the group still has jobs (or was not listed)
  Both keys share the queue's hash tag.
]]
if redis.call('ZCARD', KEYS[1]) == 0 then
  return redis.call('SREM', KEYS[2], ARGV[1])
end
return 0
