--[[
  Compare-and-set a job's state.
  KEYS[1]  the job's record (hash)
  KEYS[2]  the reconciliation index: zset job id -> when to look at the job's provider task (ms)
  ARGV[1]  the new state
  ARGV[2]  comma-separated states the job may be in for the move to happen
  ARGV[3]  now (ISO-8601 UTC), written to updated_at
  ARGV[4]  attempt guard: '' for none, else the move only happens when the record's attempt equals it
  ARGV[5]  reconcile at (ms) when the new state waits on the provider, '' to leave the index
  ARGV[6..] field, value pairs to write with the move ('' value deletes the field)
  Returns  {1, previous_state, new_version}  moved
           {0, current_state, version}       refused: the job is not in an allowed state
           {-1}                              no such job
  Atomic, so concurrent workers and duplicate webhooks see one winner; and the reconciliation
  index moves with the state (a job waiting on the provider is always in it, a finished one never),
  so the reconciler finds overdue jobs without scanning. A job of a batch also moves the batch's
  per-state counters (the batch keys are derived from the job key: same hash tag).
]]
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
if not allowed then
  return {0, current, version}
end
version = version + 1
redis.call('HSET', KEYS[1], 'state', ARGV[1], 'updated_at', ARGV[3], 'version', version)
for i = 6, #ARGV, 2 do
  if ARGV[i + 1] == '' then
    redis.call('HDEL', KEYS[1], ARGV[i])
  else
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  end
end
-- A batch's counters move with its jobs, in the same atomic step: O(1) to read, always exact.
local batch = redis.call('HGET', KEYS[1], 'batch_id')
if batch then
  local batchKey = string.gsub(KEYS[1], 'job:[^:]*$', 'batch:' .. batch)
  local counts = batchKey .. ':counts'
  redis.call('HINCRBY', counts, current, -1)
  redis.call('HINCRBY', counts, ARGV[1], 1)
  if current == 'queued' or current == 'waiting_budget' then
    redis.call('HSETNX', batchKey, 'started_at', ARGV[3])
  end
  if ARGV[1] == 'completed' or ARGV[1] == 'failed' or ARGV[1] == 'cancelled' then
    local c = redis.call('HMGET', counts, 'completed', 'failed', 'cancelled')
    local done = tonumber(c[1] or '0') + tonumber(c[2] or '0') + tonumber(c[3] or '0')
    if done >= tonumber(redis.call('HGET', batchKey, 'total') or '-1') then
      redis.call('HSETNX', batchKey, 'finished_at', ARGV[3])
    end
  end
end
if ARGV[5] ~= '' then
  redis.call('ZADD', KEYS[2], ARGV[5], KEYS[1])
else
  redis.call('ZREM', KEYS[2], KEYS[1])
end
return {1, current, version}
