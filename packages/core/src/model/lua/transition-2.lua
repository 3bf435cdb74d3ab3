--[[
  Compare-and-set a job's state.
  KEYS[1]  the job's record (hash)
  KEYS[2]  the reconciliation index: zset job id -> when to look at the job's provider task (ms)
  ARGV[1]  the new state
  ARGV[2]  comma-separated states the job may be in for the move to happen
  ARGV[3]  now (ISO-8601 UTC), written to updated_at
  ARGV[4]  attempt guard: '' for none, else the move only happens when the record's attempt equals it
  ARGV[5]  reconcile at (ms) when the new state waits on the provider, '' to leave the index (the
           task's deadline, when sooner, is used instead: see below)
  ARGV[6]  events older than this (ms) may be trimmed from the tenant's event stream
  ARGV[7]  task guard: '' for none, else the move only happens when the record holds no task id
           or this one (a task attached by a faster update is never replaced by another)
  ARGV[8]  the soonest the reconciler may look (ms) when the new state waits on the provider ('' for
           no floor): a task with an `overdue_ms` is looked at then, within ARGV[8] .. ARGV[5]
  ARGV[9..] field, value pairs to write with the move ('' value deletes the field)
  Returns  {1, previous_state, new_version}  moved
           {0, current_state, version}       refused: the job is not in an allowed state
           {-1}                              no such job
  Atomic, so concurrent workers and duplicate webhooks see one winner; and the reconciliation
  index moves with the state (a job waiting on the provider is always in it, a finished one never),
  so the reconciler finds overdue jobs without scanning. In the same step, derived from the job key
  (same hash tag, so the script stays on one Cluster slot):
  - a job of a batch moves the batch's per-state counters (O(1) to read, always exact), and its
    started / finished times;
  - a listed job (field `indexed`) moves between the by-state listing indexes (see keys.ts);
  - the move is appended to the job's timeline (kept with the record, archived with it) and to
    the tenant's event stream (and a batch's start and finish too), which
    is trimmed by age as it grows;
  - the outbox: a job that becomes terminal (and a batch that finishes) is queued for archiving
    in PostgreSQL in this very step, so a final state is never lost between Redis and the books;
    a job that leaves a terminal state (a batch retry re-runs it) is no longer evictable.
]]
--@include write-fields
--@include job-listing
--@include server-now
--@include terminal-state
--@include job-timeline
local current = redis.call('HGET', KEYS[1], 'state')
if not current then
  return {-1}
end
local version = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
local allowed = false
for state in string.gmatch(ARGV[2], '[^,]+') do
  if state == current then
    allowed = true
    break
  end
end
if allowed and ARGV[4] ~= '' then
  allowed = (redis.call('HGET', KEYS[1], 'attempt') or '0') == ARGV[4]
end
if allowed and ARGV[7] ~= '' then
  local task = redis.call('HGET', KEYS[1], 'task_id')
  allowed = (not task) or task == ARGV[7]
end
if not allowed then
  return {0, current, version}
end
version = version + 1
redis.call('HSET', KEYS[1], 'state', ARGV[1], 'updated_at', ARGV[3], 'version', version)
write_fields(KEYS[1], 9)
append_timeline(KEYS[1], ARGV[1], ARGV[3])
local base, jobId = job_key_parts(KEYS[1])
local fields = redis.call('HMGET', KEYS[1], 'tenant', 'batch_id', 'indexed')
local tenant, batch = fields[1], fields[2]
local events = base .. 'events:' .. tenant
local function emit(...)
  redis.call('XADD', events, 'MINID', ARGV[6], '*', ...)
end
emit('type', 'job.state', 'job', jobId, 'batch', batch or '', 'from', current, 'to', ARGV[1], 'at', ARGV[3],
  'version', tostring(version))
if fields[3] then
  local idx = base .. 'idx:jobs'
  redis.call('ZREM', idx .. ':s:' .. current, jobId)
  redis.call('ZADD', idx .. ':s:' .. ARGV[1], 0, jobId)
  redis.call('ZREM', idx .. ':t:' .. tenant .. ':s:' .. current, jobId)
  redis.call('ZADD', idx .. ':t:' .. tenant .. ':s:' .. ARGV[1], 0, jobId)
end
if batch then
  local batchKey = base .. 'batch:' .. batch
  local counts = batchKey .. ':counts'
  redis.call('HINCRBY', counts, current, -1)
  redis.call('HINCRBY', counts, ARGV[1], 1)
  if (current == 'queued' or current == 'waiting_budget') and redis.call('HSETNX', batchKey, 'started_at', ARGV[3]) == 1 then
    emit('type', 'batch.started', 'batch', batch, 'at', ARGV[3])
  end
  if is_terminal(ARGV[1]) then
    local c = redis.call('HMGET', counts, 'completed', 'failed', 'cancelled', 'expired')
    local done = tonumber(c[1] or '0') + tonumber(c[2] or '0') + tonumber(c[3] or '0') + tonumber(c[4] or '0')
    if done >= tonumber(redis.call('HGET', batchKey, 'total') or '-1')
      and redis.call('HSETNX', batchKey, 'finished_at', ARGV[3]) == 1 then
      emit('type', 'batch.finished', 'batch', batch, 'at', ARGV[3])
      redis.call('ZADD', base .. 'outbox:batches', server_now(), batch)
    end
  end
end
if is_terminal(ARGV[1]) then
  redis.call('ZADD', base .. 'outbox:jobs', server_now(), jobId)
elseif is_terminal(current) then
  redis.call('ZREM', base .. 'archived:jobs', jobId)
end
-- The task's deadline: it starts when the task first waits on the provider (submitted or running,
-- the job's timeout_seconds from now), holds while it is cancelled, and is cleared when the job
-- goes back in line for a new attempt. The reconciler looks at the job by its deadline at the latest.
local reconcileAt = ARGV[5]
if ARGV[1] == 'submitted' or ARGV[1] == 'running' then
  -- Looked at when overdue against its expected duration, not a flat delay after each move; a
  -- task late already is looked at again as long after as it is late (the reconciler backs off
  -- the same way), so the most overdue do not take the reads budget from the rest.
  local overdue = redis.call('HGET', KEYS[1], 'overdue_ms')
  if overdue and reconcileAt ~= '' and ARGV[8] ~= '' then
    local at = math.max(tonumber(overdue), tonumber(ARGV[8]))
    local late = server_now() - tonumber(overdue)
    if late > 0 then
      at = math.max(at, server_now() + late)
    end
    reconcileAt = string.format('%d', math.min(tonumber(reconcileAt), at))
  end
  local deadline = redis.call('HGET', KEYS[1], 'deadline_ms')
  local timeout = redis.call('HGET', KEYS[1], 'timeout_seconds')
  if not deadline and timeout then
    deadline = tostring(server_now() + tonumber(timeout) * 1000)
    redis.call('HSET', KEYS[1], 'deadline_ms', deadline)
  end
  if deadline and reconcileAt ~= '' and tonumber(deadline) < tonumber(reconcileAt) then
    reconcileAt = deadline
  end
elseif ARGV[1] == 'queued' or ARGV[1] == 'waiting_budget' or ARGV[1] == 'submitting' then
  redis.call('HDEL', KEYS[1], 'deadline_ms', 'deadline_exceeded_at', 'overdue_ms')
end
if reconcileAt ~= '' then
  redis.call('ZADD', KEYS[2], reconcileAt, KEYS[1])
else
  redis.call('ZREM', KEYS[2], KEYS[1])
end
return {1, current, version}
