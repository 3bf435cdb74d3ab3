--[[
  Release a lock only if this caller still holds it (a pass that outlived its lock must not free
  the next holder's).
  KEYS[1]  the lock
  ARGV[1]  the holder's token
  Returns  1 released, 0 not held by this token
]]
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
