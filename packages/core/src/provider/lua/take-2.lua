--[[
  Take one request of a provider quota other than submits (task reads, uploads), for every
  process at once: the group is not paused after a 429 and its sliding log has room. The same log
  as admit-4.lua: an entry counts from when it is taken until a full window after the request
  ended (submitted-2.lua moves its score there), so no window of the configured length ever holds
  more than the limit, wherever the provider counts the request between our send and its answer.
  KEYS[1]  request log: zset token -> the time the request stops counting from (ms)
  KEYS[2]  pause-until (ms), set after a 429 of this group
  ARGV[1]  requests allowed per window
  ARGV[2]  window length (ms)
  ARGV[3]  how long a request still in progress holds its place (ms): the client's timeout
  ARGV[4]  a unique token for this request
  ARGV[5]  how many of the window's places this request may not take (0: it may take them all):
           the share kept for requests that must not wait behind background ones
  Returns  {1, now}                    taken
           {0, reason, wait ms}        reason 'paused' | 'rate'
  Uses the server clock (TIME), one clock for all processes. Both keys share {limits}.
]]
--@include server-now
local now = server_now()
local pausedUntil = tonumber(redis.call('GET', KEYS[2]) or '0')
if pausedUntil > now then
  return {0, 'paused', pausedUntil - now}
end
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local open = limit - tonumber(ARGV[5] or '0')
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. (now - window))
local held = redis.call('ZCARD', KEYS[1])
if held >= open then
  -- Room comes back as the oldest entries leave the window: the one that brings it under `open`.
  local nth = redis.call('ZRANGE', KEYS[1], held - open, held - open, 'WITHSCORES')
  return {0, 'rate', math.max(1, tonumber(nth[2]) + window - now + 1)}
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[4])
redis.call('PEXPIRE', KEYS[1], window + tonumber(ARGV[3]))
return {1, now}
