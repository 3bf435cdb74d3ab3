--[[
  Create a job record unless one exists under that key, list it, and tell its tenant's stream.
  KEYS[1]  the job's record (hash)
  ARGV[1]  events older than this (ms) may be trimmed from the tenant's event stream
  ARGV[2..] field, value pairs (including tenant and state)
  Returns  1 created, 0 a record already exists (nothing written)
  The listing indexes and the event stream are derived from the job key (same hash tag; the key
  spellings are those of keys.ts), as in transition-2.lua.
]]
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('HSET', KEYS[1], 'indexed', '1')
local base = string.gsub(KEYS[1], 'job:[^:]*$', '')
local jobId = string.match(KEYS[1], 'job:([^:]*)$')
local fields = redis.call('HMGET', KEYS[1], 'tenant', 'state', 'created_at', 'batch_id')
local tenant, state = fields[1], fields[2]
local idx = base .. 'idx:jobs'
redis.call('ZADD', idx, 0, jobId)
redis.call('ZADD', idx .. ':s:' .. state, 0, jobId)
redis.call('ZADD', idx .. ':t:' .. tenant, 0, jobId)
redis.call('ZADD', idx .. ':t:' .. tenant .. ':s:' .. state, 0, jobId)
redis.call('XADD', base .. 'events:' .. tenant, 'MINID', ARGV[1], '*', 'type', 'job.created', 'job', jobId,
  'batch', fields[4] or '', 'to', state, 'at', fields[3], 'version', '1')
return 1
