--[[
  The fate of a staged (uploading, invisible) batch, decided in one place so an upload and the
  janitor can never both win. A staged batch's score in the staging zset is when its upload last
  wrote; 0 means it is being discarded.
  KEYS[1]  staging zset (batch id -> last write, ms; 0 = being discarded)
  KEYS[2]  lining zset (committed batches whose jobs are being put in line)
  ARGV[1]  'touch' (an upload wrote a chunk), 'claim' (the janitor or the upload itself gives up on
           it) or 'commit'
  ARGV[2]  batch id
  ARGV[3]  now (ms)
  ARGV[4]  for 'claim': only a batch last written before this (ms; '+inf' for any)
  Returns 1 when done, 0 when the batch is not (or no longer) staged, or too fresh to claim.
  All keys share the queue's hash tag.
]]
local score = redis.call('ZSCORE', KEYS[1], ARGV[2])
local op = ARGV[1]
if op == 'claim' then
  -- A claim that crashed half-way left 0: the next claim finishes it.
  if not score or (tonumber(score) ~= 0 and tonumber(score) >= tonumber(ARGV[4])) then
    return 0
  end
  redis.call('ZADD', KEYS[1], 0, ARGV[2])
  return 1
end
if not score or tonumber(score) == 0 then
  return 0
end
if op == 'touch' then
  redis.call('ZADD', KEYS[1], 'XX', ARGV[3], ARGV[2])
  return 1
end
-- commit: out of staging and into lining in the same step, so it is always in one of them.
redis.call('ZREM', KEYS[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[2])
return 1
