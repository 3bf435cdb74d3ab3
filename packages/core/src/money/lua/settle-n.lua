--[[
  Settle a job's money, exactly once: charge its actual cost (or nothing) and release its
  reservation, moving the amount from reserved to spent in the same budget periods it was
  reserved in (so reserved + spent never grows past a limit because a day or month rolled over).
  KEYS[1]    reservations hash: job id -> "<amount> <usage key> ..."
  KEYS[2]    charged hash: job id -> "day|resolution|tenant|batch|ms|micro_usd|price_version"
  KEYS[3]    costs hash of the day: "<resolution>|<tenant>|<batch>|ms|count|micro_usd" counters
  KEYS[4]    set of days that have cost counters
  KEYS[5]    the batch's billed totals: "<resolution>|ms|count|micro_usd" counters (written only
             for a job of a batch, so a batch's spend reads in O(1))
  KEYS[6]    the day's billed totals of the job's tenant, and KEYS[7] of everyone:
             "<resolution>|ms|count|micro_usd" counters (today's spend reads in O(1))
  KEYS[8..]  usage hashes to move: the reservation's (as the caller read it) or, for a job that
             never reserved, the current periods of its scopes
  ARGV[1]    job id
  ARGV[2]    'charge' (a billed job) or 'release' (nothing billed)
  ARGV[3]    actual cost in micro-dollars (0 for release)
  ARGV[4]    billed milliseconds
  ARGV[5]    day (YYYY-MM-DD, UTC) the charge counts on
  ARGV[6]    "<resolution>|<tenant>|<batch or ->" the charge is reported under
  ARGV[7]    price-table version
  ARGV[8]    the reservation entry the caller read ('' when there was none)
  ARGV[9]    the charge's id: the job id, or for a job re-run after it had finished, one per run
  Returns  1 settled now, 0 nothing to do (already charged, or nothing reserved to release)
  All keys share {ledger}.
]]
local charging = ARGV[2] == 'charge'
if charging then
  local entry = ARGV[5] .. '|' .. ARGV[6] .. '|' .. ARGV[4] .. '|' .. ARGV[3] .. '|' .. ARGV[7]
  if redis.call('HSETNX', KEYS[2], ARGV[9], entry) == 0 then
    return 0
  end
  redis.call('HINCRBY', KEYS[3], ARGV[6] .. '|ms', ARGV[4])
  redis.call('HINCRBY', KEYS[3], ARGV[6] .. '|count', 1)
  redis.call('HINCRBY', KEYS[3], ARGV[6] .. '|micro_usd', ARGV[3])
  redis.call('SADD', KEYS[4], ARGV[5])
  local resolution, batch = string.match(ARGV[6], '^([^|]*)|[^|]*|(.*)$')
  local totals = {KEYS[6], KEYS[7]}
  if batch ~= '-' then
    totals[3] = KEYS[5]
  end
  for _, key in ipairs(totals) do
    redis.call('HINCRBY', key, resolution .. '|ms', ARGV[4])
    redis.call('HINCRBY', key, resolution .. '|count', 1)
    redis.call('HINCRBY', key, resolution .. '|micro_usd', ARGV[3])
  end
end
local reservation = redis.call('HGET', KEYS[1], ARGV[1])
if reservation then
  if reservation ~= ARGV[8] then
    return redis.error_reply('RESERVATION_CHANGED the reservation of ' .. ARGV[1] .. ' changed while settling')
  end
  local amount = tonumber(string.match(reservation, '^(%d+)'))
  for i = 8, #KEYS do
    redis.call('HINCRBY', KEYS[i], 'reserved', string.format('%d', -amount))
    if charging then
      redis.call('HINCRBY', KEYS[i], 'spent', ARGV[3])
    end
  end
  redis.call('HDEL', KEYS[1], ARGV[1])
  return 1
end
if charging then
  for i = 8, #KEYS do
    redis.call('HINCRBY', KEYS[i], 'spent', ARGV[3])
  end
  return 1
end
return 0
