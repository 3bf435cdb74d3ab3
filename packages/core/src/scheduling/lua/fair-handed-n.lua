--[[
  The hand-over of picked jobs to BullMQ is done: take each member out of `feeding`, but only if
  its BullMQ job exists. Why not a plain ZREM: the BullMQ add and this removal are two commands,
  and in a Redis failover the add may be acknowledged by the old primary and lost with it while
  the removal, queued by the client during the reconnect, runs on the new primary. A plain ZREM
  would then leave a queued job in no line, no hand-over and no BullMQ queue: never dispatched.
  Kept in `feeding`, it is handed over again by recover().
  KEYS[1]     feeding: zset "<job id>|<seq>" -> picked at (ms)
  KEYS[2..]   the BullMQ job hash of each member, in the order of ARGV
  ARGV[1..]   the members handed over
  Returns     how many members were removed
]]
local removed = 0
for i = 1, #ARGV do
  if redis.call('EXISTS', KEYS[i + 1]) == 1 then
    removed = removed + redis.call('ZREM', KEYS[1], ARGV[i])
  end
end
return removed
