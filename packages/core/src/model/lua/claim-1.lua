--[[
  The submit claim of one attempt: "this dispatch may send one task for attempt n", checked
  atomically right before the POST. A settle that attaches a task to the job revokes it (the
  transition writes the task id and clears `submit_claim`), so a dispatch that comes back from a
  crash or a lost answer never sends a second task once the first one is known.
  KEYS[1]  the job's record (hash)
  ARGV[1]  'claim' (about to POST), 'ended' (a POST whose answer was lost has ended: the claim
           is spent, and when it ended is written, so a resumed dispatch knows how long to let
           the provider settle before it searches for the task) or 'next' (the search found no
           task: the job moves to the next attempt, claimed, so the POST it is about to send is
           that attempt's one, whatever a late POST of this one may still create)
  ARGV[2]  the attempt
  ARGV[3]  the dispatch (BullMQ job id) that claimed the attempt
  ARGV[4]  now (ISO-8601 UTC)
  Returns  1 done ('next': the new attempt); 0 the job is not `submitting` on this attempt with no
           task id, or another dispatch claimed it (nothing written); -1 no such job
  'claim' and 'ended' are internal bookkeeping: the version, `notes` and updated_at (what users
  see and tag) are left alone. 'next' changes the attempt users see: `notes` and updated_at move.
]]
local f = redis.call('HMGET', KEYS[1], 'state', 'attempt', 'task_id', 'dispatch_id', 'submit_claim')
if not f[1] then
  return -1
end
if f[1] ~= 'submitting' or f[2] ~= ARGV[2] or f[3] or f[4] ~= ARGV[3] then
  return 0
end
if ARGV[1] == 'next' then
  local attempt = tonumber(ARGV[2]) + 1
  redis.call('HSET', KEYS[1], 'attempt', attempt, 'submit_claim', ARGV[3], 'claimed_at', ARGV[4],
    'updated_at', ARGV[4])
  redis.call('HDEL', KEYS[1], 'submit_ended_at')
  redis.call('HINCRBY', KEYS[1], 'notes', 1)
  return attempt
end
if ARGV[1] == 'claim' then
  redis.call('HSET', KEYS[1], 'submit_claim', ARGV[3], 'claimed_at', ARGV[4])
  redis.call('HDEL', KEYS[1], 'submit_ended_at')
  return 1
end
if f[5] ~= ARGV[3] then
  return 0
end
redis.call('HDEL', KEYS[1], 'submit_claim')
redis.call('HSET', KEYS[1], 'submit_ended_at', ARGV[4])
return 1
