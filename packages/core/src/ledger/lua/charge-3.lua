--[[
  Record one settled job's actual cost, exactly once.
  KEYS[1]  {ledger}:charged  hash job id -> "day|resolution|ms|micro_usd|price_version"
  KEYS[2]  {ledger}:day:<day> hash of counters "<resolution>:ms", "<resolution>:count", "<resolution>:micro_usd"
  KEYS[3]  {ledger}:days    set of days that have counters
  ARGV[1]  job id
  ARGV[2]  day (YYYY-MM-DD, UTC)
  ARGV[3]  resolution
  ARGV[4]  billed milliseconds (integer)
  ARGV[5]  cost in micro-dollars (integer)
  ARGV[6]  price-table version
  Returns  1 charged now, 0 already charged (a duplicate settle adds nothing)
  All keys share the {ledger} hash tag.
]]
local entry = ARGV[2] .. '|' .. ARGV[3] .. '|' .. ARGV[4] .. '|' .. ARGV[5] .. '|' .. ARGV[6]
if redis.call('HSETNX', KEYS[1], ARGV[1], entry) == 0 then
  return 0
end
redis.call('HINCRBY', KEYS[2], ARGV[3] .. ':ms', ARGV[4])
redis.call('HINCRBY', KEYS[2], ARGV[3] .. ':count', 1)
redis.call('HINCRBY', KEYS[2], ARGV[3] .. ':micro_usd', ARGV[5])
redis.call('SADD', KEYS[3], ARGV[2])
return 1
