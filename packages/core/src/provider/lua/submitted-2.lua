--[[
  A submit admitted by admit-4.lua has ended (answered, failed or timed out): from now on its
  entry in the request log counts for one window from this moment, not from its pending hold.
  KEYS[1]  request log zset
  KEYS[2]  pause-until (ms)
  ARGV[1]  the request's token
  ARGV[2]  pause for this many ms (a 429 answer), or 0
  Returns  1
]]
--@include server-now
local now = server_now()
redis.call('ZADD', KEYS[1], 'XX', now, ARGV[1])
local pauseMs = tonumber(ARGV[2])
if pauseMs > 0 then
  local until_ = now + pauseMs
  local current = tonumber(redis.call('GET', KEYS[2]) or '0')
  if until_ > current then
    redis.call('SET', KEYS[2], until_, 'PX', pauseMs)
  end
end
return 1
