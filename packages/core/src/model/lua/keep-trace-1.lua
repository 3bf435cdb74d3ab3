--[[
  Keep a job's trace context on its record, so its later steps (dispatch, webhook, settle,
  callback: other processes, other queues) join the trace its submit or first dispatch started.
  KEYS[1]  the job's record (hash)
  ARGV[1]  the W3C traceparent
  Returns  1 kept, 0 the job has one already, -1 no such job (nothing is written: a record that
           left Redis is never brought back as a stray field)
]]
if redis.call('HEXISTS', KEYS[1], 'state') == 0 then
  return -1
end
return redis.call('HSETNX', KEYS[1], 'traceparent', ARGV[1])
