--[[
  A finished job leaves Redis: its copy in PostgreSQL is current and was written long enough ago.
  KEYS[1]   the job's record (hash)
  KEYS[2]   archived jobs (zset id -> archived at, ms)
  KEYS[3]   the reconcile index (its members are job keys)
  KEYS[4..] the listing indexes the job is in (every job, by state, by tenant, by tenant and state)
  ARGV[1]   job id
  ARGV[2]   the version and ARGV[3] the notes the caller read (the archived copy's)
  ARGV[4]   evict only what was archived at or before this (ms)
  Returns   1 evicted, 0 not yet (archived later, or changed since: then it is not evictable until
            archived again)
  Every key is declared; all share the queue's hash tag.
]]
--@include terminal-state
local archived = redis.call('ZSCORE', KEYS[2], ARGV[1])
if not archived or tonumber(archived) > tonumber(ARGV[4]) then
  return 0
end
local f = redis.call('HMGET', KEYS[1], 'state', 'version', 'notes')
if not f[1] or not is_terminal(f[1]) or (f[2] or '0') ~= ARGV[2] or (f[3] or '0') ~= ARGV[3] then
  redis.call('ZREM', KEYS[2], ARGV[1])
  return 0
end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[3], KEYS[1])
for i = 4, #KEYS do
  redis.call('ZREM', KEYS[i], ARGV[1])
end
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
