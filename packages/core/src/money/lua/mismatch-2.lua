--[[
  Count a billing mismatch (an output whose real duration is not what was billed), once per
  charge: a retried check adds nothing.
  KEYS[1]  set of charge ids whose output duration was checked and found mismatched
  KEYS[2]  mismatch counters of the day the charge counts on: "<resolution>|<tenant>|<batch>|mismatches"
  ARGV[1]  the charge's id (the job id, or one per re-run)
  ARGV[2]  "<resolution>|<tenant>|<batch or ->" as the charge is reported under
  Returns  1 counted now, 0 counted before
  All keys share {ledger}.
]]
if redis.call('SADD', KEYS[1], ARGV[1]) == 0 then
  return 0
end
redis.call('HINCRBY', KEYS[2], ARGV[2] .. '|mismatches', 1)
return 1
