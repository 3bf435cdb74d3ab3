--[[
  A finished batch leaves Redis (its view is in PostgreSQL, written long enough ago): its record,
  per-state counters, rows by line, and its place in its tenant's listing.
  KEYS[1]  the batch record (hash)
  KEYS[2]  its counters, KEYS[3] its rows by line, KEYS[4] the tenant's batches (zset)
  KEYS[5]  archived batches (zset id -> archived at, ms)
  ARGV[1]  batch id
  ARGV[2]  evict only what was archived at or before this (ms)
  Returns  1 evicted, 0 not yet (archived later, or re-opened by a retry since)
  All keys share the queue's hash tag.
]]
local archived = redis.call('ZSCORE', KEYS[5], ARGV[1])
if not archived or tonumber(archived) > tonumber(ARGV[2]) then
  return 0
end
if redis.call('EXISTS', KEYS[1]) == 1 and not redis.call('HGET', KEYS[1], 'finished_at') then
  redis.call('ZREM', KEYS[5], ARGV[1])
  return 0
end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
redis.call('ZREM', KEYS[4], ARGV[1])
redis.call('ZREM', KEYS[5], ARGV[1])
return 1
