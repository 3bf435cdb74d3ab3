--[[
  Fold one finished task into the processing-time figures (a moving figure per kind of task).
  KEYS[1]  hash: <kind>:ms_per_s -> milliseconds of provider time per output second (moving),
                 <kind>:n -> tasks observed, <kind>:seconds -> output seconds per task (moving),
                 <kind>:turnaround -> ms a slot is held beyond the provider's time (moving),
                 <kind>:at -> when last observed (ms)
  ARGV[1]  the kind (e.g. `720p|std`; the caller also folds every task into `all`)
  ARGV[2]  milliseconds per output second of this task
  ARGV[3]  output seconds of this task
  ARGV[4]  the weight of the newest task once there are enough (e.g. 0.1)
  ARGV[5]  now (ms)
  ARGV[6]  this task's turnaround (ms: from taking its slot to our settling it, less the provider's
           time: the submit, the webhook's way back, a lost webhook's wait), '' when unknown
  An exponentially weighted mean, started as a plain mean: the first tasks weigh 1/n each until
  1/n falls under ARGV[4], so one odd first task does not stick and a slow drift is followed.
  Atomic, so workers settling at once never lose an observation.
]]
local kind = ARGV[1]
local n = tonumber(redis.call('HINCRBY', KEYS[1], kind .. ':n', 1))
local alpha = math.max(1 / n, tonumber(ARGV[4]))
local function fold(field, sample)
  local old = tonumber(redis.call('HGET', KEYS[1], field) or sample)
  local new = old + alpha * (sample - old)
  redis.call('HSET', KEYS[1], field, tostring(new))
end
fold(kind .. ':ms_per_s', tonumber(ARGV[2]))
fold(kind .. ':seconds', tonumber(ARGV[3]))
if ARGV[6] ~= '' then
  fold(kind .. ':turnaround', tonumber(ARGV[6]))
end
redis.call('HSET', KEYS[1], kind .. ':at', ARGV[5])
return n
