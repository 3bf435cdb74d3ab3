--[[
  Admit one submit to the provider, for every worker at once: the provider is not paused after a
  429, a slot for a task in flight is free (or this job holds one already), and the request-rate
  window has room and the pace allows it. Takes both or neither.
  KEYS[1]  in-flight tasks: zset job id -> acquired at (ms)
  KEYS[2]  request log: zset token -> the time the request stops counting from (ms, see below)
  KEYS[3]  pause-until (ms), set after a provider 429
  KEYS[4]  pace: the theoretical time of the next submit (ms; GCRA, see below)
  ARGV[1]  job id
  ARGV[2]  max tasks in flight (0 = no cap)
  ARGV[3]  max submits per window (0 = no limit)
  ARGV[4]  window length (ms)
  ARGV[5]  how long a request still in progress holds its place (ms): the client's timeout
  ARGV[6]  a unique token for this request
  ARGV[7]  burst: submits that may go back to back before the pace holds them (0 = no pacing)
  Returns  {1, now}                    admitted
           {0, reason, wait ms}        reason 'paused' | 'in_flight' | 'rate'
  A sliding log, not a fixed window, so no window of the configured length ever holds more than
  the limit. The provider counts a request when it arrives, which is somewhere between our send and
  its answer; so an entry counts from when it was admitted until a full window after the request
  ended (submitted-2.lua moves its score to the end). Uses the server clock (TIME), one clock for
  all workers. All keys share {limits}.
  The log alone would let a whole window's submits go in one burst and then hold every newcomer
  until the window slides (58 s at 100 a minute). So submits are also paced (the generic cell rate
  algorithm: one submit per window/limit on average, up to `burst` back to back after a quiet spell):
  the provider sees a smooth rate, and a job that arrives behind a backlog waits a few intervals,
  not a window. The log still bounds every window, whatever the pace.
]]
--@include server-now
local now = server_now()
local pausedUntil = tonumber(redis.call('GET', KEYS[3]) or '0')
if pausedUntil > now then
  return {0, 'paused', pausedUntil - now}
end
local maxInFlight = tonumber(ARGV[2])
local held = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not held and maxInFlight > 0 and redis.call('ZCARD', KEYS[1]) >= maxInFlight then
  return {0, 'in_flight', 0}
end
local limit = tonumber(ARGV[3])
if limit > 0 then
  local window = tonumber(ARGV[4])
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. (now - window))
  if redis.call('ZCARD', KEYS[2]) >= limit then
    local oldest = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
    return {0, 'rate', math.max(1, tonumber(oldest[2]) + window - now + 1)}
  end
  local burst = tonumber(ARGV[7])
  if burst > 0 then
    local interval = window / limit
    local tat = math.max(tonumber(redis.call('GET', KEYS[4]) or '0'), now)
    local early = tat - now - (burst - 1) * interval
    if early > 0 then
      return {0, 'rate', math.max(1, math.ceil(early))}
    end
    redis.call('SET', KEYS[4], tostring(math.floor(tat + interval)), 'PX', math.ceil(window + burst * interval))
  end
  redis.call('ZADD', KEYS[2], now + tonumber(ARGV[5]), ARGV[6])
  redis.call('PEXPIRE', KEYS[2], window + tonumber(ARGV[5]))
end
if not held then
  redis.call('ZADD', KEYS[1], now, ARGV[1])
end
return {1, now}
