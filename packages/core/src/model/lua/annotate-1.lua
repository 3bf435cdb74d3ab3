--[[
  Write fields on a job without moving its state, only while it is still the run they are about
  (a finished job's kept output, say, must not land on the record of a re-run of it).
  KEYS[1]  the job's record (hash)
  ARGV[1]  the state the job must be in
  ARGV[2]  the task id it must hold
  ARGV[3]  now (ISO-8601 UTC), written to updated_at
  ARGV[4..] field, value pairs ('' value deletes the field)
  Returns  1 written, 0 the job is in another state or on another task, -1 no such job
  The version (a count of state moves) is left alone; `notes` counts these writes instead, so
  two writes within one millisecond still give the record two different tags. A terminal job
  written to again is queued for archiving again (the outbox, as in transition-2.lua), so its
  copy in PostgreSQL follows.
]]
--@include write-fields
--@include server-now
--@include terminal-state
--@include job-listing
local current = redis.call('HMGET', KEYS[1], 'state', 'task_id')
if not current[1] then
  return -1
end
if current[1] ~= ARGV[1] or current[2] ~= ARGV[2] then
  return 0
end
redis.call('HSET', KEYS[1], 'updated_at', ARGV[3])
redis.call('HINCRBY', KEYS[1], 'notes', 1)
write_fields(KEYS[1], 4)
if is_terminal(ARGV[1]) then
  local base, jobId = job_key_parts(KEYS[1])
  redis.call('ZADD', base .. 'outbox:jobs', server_now(), jobId)
end
return 1
