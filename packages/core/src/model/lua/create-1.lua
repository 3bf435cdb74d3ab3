--[[
  Create a job record unless one exists under that key, list it, and tell its tenant's stream.
  KEYS[1]  the job's record (hash)
  ARGV[1]  events older than this (ms) may be trimmed from the tenant's event stream
  ARGV[2..] field, value pairs (including tenant, state and created_at)
  The job's timeline starts with its state at created_at (infra/lua/job-timeline.lua).
  Returns  1 created, 0 a record already exists (nothing written)
  The listing indexes and the event stream are derived from the job key (same hash tag; the key
  spellings are those of keys.ts), as in transition-2.lua.
]]
--@include job-listing
--@include job-timeline
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('HSET', KEYS[1], 'indexed', '1')
local base, jobId = job_key_parts(KEYS[1])
local fields = redis.call('HMGET', KEYS[1], 'tenant', 'state', 'created_at', 'batch_id')
local tenant, state = fields[1], fields[2]
append_timeline(KEYS[1], state, fields[3])
list_job(base, jobId, tenant, state)
redis.call('XADD', base .. 'events:' .. tenant, 'MINID', ARGV[1], '*', 'type', 'job.created', 'job', jobId,
  'batch', fields[4] or '', 'to', state, 'at', fields[3], 'version', '1')
return 1
