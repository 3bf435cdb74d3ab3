--[[
  A job's copy was written to PostgreSQL: take it off the outbox and note when, so it leaves Redis
  REDIS_JOB_RETENTION_MS later (evict-job-n.lua). Only the copy that was written counts: a record
  written to again since (a kept output noted after it finished) stays on the outbox for the next
  pass, and one that is no longer terminal (a batch retry re-runs it) leaves it.
  KEYS[1]  the job's record (hash)
  KEYS[2]  the jobs outbox (zset id -> queued at, ms)
  KEYS[3]  archived jobs (zset id -> archived at, ms)
  ARGV[1]  job id
  ARGV[2]  the version written
  ARGV[3]  the notes written
  Returns  1 marked, 0 left on the outbox (changed since), -1 gone or not terminal (taken off)
]]
--@include server-now
--@include terminal-state
local f = redis.call('HMGET', KEYS[1], 'state', 'version', 'notes')
if not f[1] or not is_terminal(f[1]) then
  redis.call('ZREM', KEYS[2], ARGV[1])
  return -1
end
if (f[2] or '0') ~= ARGV[2] or (f[3] or '0') ~= ARGV[3] then
  return 0
end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[3], server_now(), ARGV[1])
return 1
