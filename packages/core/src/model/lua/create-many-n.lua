--[[
  Create many job records at once (a chunk of a batch's rows), each unless one exists under its
  key, and index them in the batch by manifest line.
  KEYS[1]     the batch's jobs by line (zset)
  KEYS[2]     the batch's per-state counters (hash)
  KEYS[3..]   the jobs' records (hashes), one per job
  ARGV[1]     the state the jobs are created in (counted in KEYS[2])
  ARGV[2..]   per job, in KEYS order: its line, its job id, the number of field/value strings
              that follow, then those strings
  Returns the number created; a job whose key already holds a record is skipped (not overwritten,
  not indexed, not counted). All keys share the queue's hash tag. Each job's timeline starts with
  ARGV[1] at its created_at.
]]
--@include job-timeline
local created = 0
local i = 2
for k = 3, #KEYS do
  local line = ARGV[i]
  local id = ARGV[i + 1]
  local n = tonumber(ARGV[i + 2])
  if redis.call('EXISTS', KEYS[k]) == 0 then
    redis.call('HSET', KEYS[k], unpack(ARGV, i + 3, i + 2 + n))
    append_timeline(KEYS[k], ARGV[1], redis.call('HGET', KEYS[k], 'created_at'))
    redis.call('ZADD', KEYS[1], line, id)
    created = created + 1
  end
  i = i + 3 + n
end
if created > 0 then
  redis.call('HINCRBY', KEYS[2], ARGV[1], created)
end
return created
