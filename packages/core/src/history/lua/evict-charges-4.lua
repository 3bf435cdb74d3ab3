--[[
  Charges whose line items are in PostgreSQL leave the ledger's live hashes after the retention:
  the charge entry, its task's entry, its billing check. By then the job they belong to has left
  Redis too (same retention), so no settle can come for them again.
  KEYS[1]  charged hash (charge id -> entry)
  KEYS[2]  charged tasks (task id -> charge id)
  KEYS[3]  billing-checked set (charge ids)
  KEYS[4]  archived charges (zset charge id -> archived at, ms)
  ARGV[1]  evict only what was archived at or before this (ms)
  ARGV[2..] charge id, task id ('' when none) pairs
  Returns  the number evicted. All keys share {ledger}.
]]
local evicted = 0
for i = 2, #ARGV, 2 do
  local archived = redis.call('ZSCORE', KEYS[4], ARGV[i])
  if archived and tonumber(archived) <= tonumber(ARGV[1]) then
    redis.call('HDEL', KEYS[1], ARGV[i])
    if ARGV[i + 1] ~= '' and redis.call('HGET', KEYS[2], ARGV[i + 1]) == ARGV[i] then
      redis.call('HDEL', KEYS[2], ARGV[i + 1])
    end
    redis.call('SREM', KEYS[3], ARGV[i])
    redis.call('ZREM', KEYS[4], ARGV[i])
    evicted = evicted + 1
  end
end
return evicted
