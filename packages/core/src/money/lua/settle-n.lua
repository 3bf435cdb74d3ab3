--[[
  Settle a job's money, exactly once: charge its actual cost (or nothing) and release its
  reservation, moving the amount from reserved to spent in the same budget periods it was
  reserved in (so reserved + spent never grows past a limit because a day or month rolled over).
  Or charge a second provider task of a job (`duplicate`): the provider billed it, so the ledger
  records it, on its own line, without touching the job's reservation.
  KEYS[1]    reservations hash: job id -> "<amount> <usage key> ..."
  KEYS[2]    charged hash: charge id ->
             "day|resolution|tenant|batch|ms|micro_usd|price_version|task_id|attempt|kind|charged_at_ms"
  KEYS[3]    costs hash of the day: "<resolution>|<tenant>|<batch>|<metric>" counters, metrics
             ms, count and micro_usd (every billed run, duplicates included in ms and micro_usd),
             dup_count and dup_micro_usd (duplicates alone)
  KEYS[4]    set of days that have cost counters
  KEYS[5]    the batch's billed totals: "<resolution>|<metric>" counters (written only for a job
             of a batch, so a batch's spend reads in O(1))
  KEYS[6]    the day's billed totals of the job's tenant, and KEYS[7] of everyone (same counters)
  KEYS[8]    charged tasks: provider task id -> charge id (a task is billed once, so it is
             charged once, whatever the charge id a retried or late update comes with)
  KEYS[9]    the charges outbox: charge id -> when charged (ms); the archiver writes each line item
             to PostgreSQL from it (queued in this very step, so no charge is ever lost between)
  KEYS[10..] usage hashes to move: the reservation's (as the caller read it) or, for a job that
             never reserved (and for a duplicate), the current periods of its scopes
  ARGV[1]    job id
  ARGV[2]    'charge' (a billed job), 'release' (nothing billed) or 'duplicate'
  ARGV[3]    actual cost in micro-dollars (0 for release)
  ARGV[4]    billed milliseconds
  ARGV[5]    day (YYYY-MM-DD, UTC) the charge counts on
  ARGV[6]    "<resolution>|<tenant>|<batch or ->" the charge is reported under
  ARGV[7]    price-table version
  ARGV[8]    the reservation entry the caller read ('' when there was none)
  ARGV[9]    the charge's id: the job id, or one per run, attempt or duplicate task
  ARGV[10]   the provider task billed ('' when unknown)
  ARGV[11]   the attempt it belonged to ('' when unknown)
  ARGV[12]   the charge's kind: run | retried_failure | duplicate
  Returns  1 settled now, 0 nothing to do (already charged, or nothing reserved to release)
  All keys share {ledger}.
]]
--@include server-now
local mode = ARGV[2]
local charging = mode ~= 'release'
if charging then
  if ARGV[10] ~= '' and redis.call('HEXISTS', KEYS[8], ARGV[10]) == 1 then
    return 0
  end
  if redis.call('HEXISTS', KEYS[2], ARGV[9]) == 1 then
    return 0
  end
end
-- Every check before the first write: a script that fails half-way keeps what it wrote (Redis
-- does not roll a script back), and a charge recorded without its reservation moved to spent
-- would leave the reservation held and the spend uncounted (its retry finds the charge and stops).
local reservation = false
if mode ~= 'duplicate' then
  reservation = redis.call('HGET', KEYS[1], ARGV[1])
  if reservation and reservation ~= ARGV[8] then
    return redis.error_reply('RESERVATION_CHANGED the reservation of ' .. ARGV[1] .. ' changed while settling')
  end
end
if charging then
  local now = server_now()
  local entry = ARGV[5] .. '|' .. ARGV[6] .. '|' .. ARGV[4] .. '|' .. ARGV[3] .. '|' .. ARGV[7] .. '|' ..
    ARGV[10] .. '|' .. ARGV[11] .. '|' .. ARGV[12] .. '|' .. now
  redis.call('HSET', KEYS[2], ARGV[9], entry)
  redis.call('ZADD', KEYS[9], now, ARGV[9])
  if ARGV[10] ~= '' then
    redis.call('HSET', KEYS[8], ARGV[10], ARGV[9])
  end
  local resolution, batch = string.match(ARGV[6], '^([^|]*)|[^|]*|(.*)$')
  local totals = {KEYS[6], KEYS[7]}
  if batch ~= '-' then
    totals[3] = KEYS[5]
  end
  local function count(key, prefix)
    redis.call('HINCRBY', key, prefix .. '|ms', ARGV[4])
    redis.call('HINCRBY', key, prefix .. '|micro_usd', ARGV[3])
    if mode == 'duplicate' then
      redis.call('HINCRBY', key, prefix .. '|dup_count', 1)
      redis.call('HINCRBY', key, prefix .. '|dup_micro_usd', ARGV[3])
    else
      redis.call('HINCRBY', key, prefix .. '|count', 1)
    end
  end
  count(KEYS[3], ARGV[6])
  redis.call('SADD', KEYS[4], ARGV[5])
  for _, key in ipairs(totals) do
    count(key, resolution)
  end
end
if mode == 'duplicate' then
  for i = 10, #KEYS do
    redis.call('HINCRBY', KEYS[i], 'spent', ARGV[3])
  end
  return 1
end
if reservation then
  local amount = tonumber(string.match(reservation, '^(%d+)'))
  for i = 10, #KEYS do
    redis.call('HINCRBY', KEYS[i], 'reserved', string.format('%d', -amount))
    if charging then
      redis.call('HINCRBY', KEYS[i], 'spent', ARGV[3])
    end
  end
  redis.call('HDEL', KEYS[1], ARGV[1])
  return 1
end
if charging then
  for i = 10, #KEYS do
    redis.call('HINCRBY', KEYS[i], 'spent', ARGV[3])
  end
  return 1
end
return 0
