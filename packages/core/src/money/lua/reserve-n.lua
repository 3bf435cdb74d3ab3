--[[
  Reserve a job's estimated cost against every budget it falls under, all or nothing.
  KEYS[1]      budget limits hash: "<scope>|<window>" -> limit in micro-dollars
  KEYS[2]      reservations hash: job id -> "<amount> <usage key> <usage key> ..."
  KEYS[3..]    usage hashes (fields reserved, spent), one per scope x window period
  ARGV[1]      job id
  ARGV[2]      amount in micro-dollars (integer)
  ARGV[3..]    the limit field of each usage key, in the same order
  Returns  {1, 'reserved'}                       reserved now
           {1, 'held'}                           this job already holds a reservation (idempotent)
           {0, limit field, limit, used}         refused: that budget would go over; nothing changed
  Check every scope first, then write: reserved + spent <= limit holds at every instant, for any
  number of concurrent callers, because the script runs atomically. All keys share {ledger}.
]]
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then
  return {1, 'held'}
end
local amount = tonumber(ARGV[2])
local n = #KEYS - 2
for i = 1, n do
  local limit = redis.call('HGET', KEYS[1], ARGV[2 + i])
  if limit then
    local usage = redis.call('HMGET', KEYS[2 + i], 'reserved', 'spent')
    local used = tonumber(usage[1] or '0') + tonumber(usage[2] or '0')
    if used + amount > tonumber(limit) then
      return {0, ARGV[2 + i], limit, string.format('%d', used)}
    end
  end
end
local entry = ARGV[2]
for i = 1, n do
  redis.call('HINCRBY', KEYS[2 + i], 'reserved', ARGV[2])
  entry = entry .. ' ' .. KEYS[2 + i]
end
redis.call('HSET', KEYS[2], ARGV[1], entry)
return {1, 'reserved'}
