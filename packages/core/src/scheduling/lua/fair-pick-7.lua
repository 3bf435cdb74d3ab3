--[[
  Choose the next jobs to hand to BullMQ, in weighted fair order (start-time fair queueing):
  the active tenant with the smallest virtual start time goes next, and each job it sends moves
  its start time on by 1 / weight. Picks only while BullMQ's wait list is shorter than the buffer,
  so the order is decided here, as late as possible, and not by whoever queued first.
  KEYS[1]  active tenants zset
  KEYS[2]  the virtual clock
  KEYS[3]  idle tenants' last finish hash
  KEYS[4]  tenant weights hash (default 1)
  KEYS[5]  feeding: zset "<job id>|<seq>" -> picked at (ms); removed once in BullMQ
  KEYS[6]  pick sequence counter (each pick gets its own BullMQ job id)
  KEYS[7]  BullMQ's wait list of the dispatch queue
  ARGV[1]  buffer: how many dispatch jobs may wait in BullMQ
  ARGV[2]  most jobs to pick in this call
  ARGV[3]  key prefix of the tenants' lines (the tenant id follows)
  ARGV[4]  now (ms)
  Returns  the picked "<job id>|<seq>" members, in dispatch order
  The tenants' lines are addressed by prefix (as BullMQ's scripts address job hashes); they
  share the same hash tag as the declared keys.
]]
local room = tonumber(ARGV[1]) - redis.call('LLEN', KEYS[7])
local n = math.min(room, tonumber(ARGV[2]))
local picked = {}
while n > 0 do
  local top = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  if #top == 0 then
    break
  end
  local tenant, start = top[1], tonumber(top[2])
  local line = ARGV[3] .. tenant
  local jobId = redis.call('LPOP', line)
  if jobId then
    local weight = tonumber(redis.call('HGET', KEYS[4], tenant) or '1') or 1
    if weight <= 0 then
      weight = 1
    end
    local finish = start + 1 / weight
    if start > tonumber(redis.call('GET', KEYS[2]) or '0') then
      redis.call('SET', KEYS[2], string.format('%.17g', start))
    end
    local member = jobId .. '|' .. redis.call('INCR', KEYS[6])
    redis.call('ZADD', KEYS[5], ARGV[4], member)
    picked[#picked + 1] = member
    n = n - 1
    if redis.call('LLEN', line) == 0 then
      redis.call('ZREM', KEYS[1], tenant)
      redis.call('HSET', KEYS[3], tenant, string.format('%.17g', finish))
    else
      redis.call('ZADD', KEYS[1], string.format('%.17g', finish), tenant)
    end
  else
    redis.call('ZREM', KEYS[1], tenant)
  end
end
return picked
