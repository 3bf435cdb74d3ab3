--[[
  Create a job record unless one exists under that key.
  KEYS[1]  the job's record (hash)
  ARGV     field, value pairs
  Returns  1 created, 0 a record already exists (nothing written)
]]
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
