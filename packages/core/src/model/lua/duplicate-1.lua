--[[
  Note on a job a second provider task that was billed (charged as a `duplicate` ledger line):
  its id in `duplicate_task_ids` (comma-separated) and its cost in `duplicate_cost_micro_usd`.
  KEYS[1]  the job's record (hash)
  ARGV[1]  the task id
  ARGV[2]  its cost (micro-dollars)
  ARGV[3]  now (ISO-8601 UTC), written to updated_at
  Returns  1 noted, 0 noted already (a repeated settle), -1 no such job
  Counted in `notes`, so the job's ETag moves; a terminal job is queued for archiving again.
]]
--@include server-now
--@include terminal-state
--@include job-listing
if redis.call('EXISTS', KEYS[1]) == 0 then
  return -1
end
local ids = redis.call('HGET', KEYS[1], 'duplicate_task_ids') or ''
for id in string.gmatch(ids, '[^,]+') do
  if id == ARGV[1] then
    return 0
  end
end
redis.call('HSET', KEYS[1], 'duplicate_task_ids', ids == '' and ARGV[1] or (ids .. ',' .. ARGV[1]))
redis.call('HINCRBY', KEYS[1], 'duplicate_cost_micro_usd', ARGV[2])
redis.call('HINCRBY', KEYS[1], 'notes', 1)
redis.call('HSET', KEYS[1], 'updated_at', ARGV[3])
if is_terminal(redis.call('HGET', KEYS[1], 'state')) then
  local base, jobId = job_key_parts(KEYS[1])
  redis.call('ZADD', base .. 'outbox:jobs', server_now(), jobId)
end
return 1
