--[[
  Drop a job from the reconciliation index, unless its record (read here, not by the caller)
  says it waits on the provider. Why the check here: the caller decided from a read that may be
  older than this primary. In a Redis failover a reconcile pass can read the job terminal on the
  old primary and have its removal run on the promoted replica, where the terminal move never
  arrived: a plain ZREM would leave a job `submitted` there that nothing looks at ever again.
  KEYS[1]  the reconciliation index: zset job key -> when to look (ms)
  KEYS[2]  the job's record (hash)
  ARGV[..] the states that wait on the provider (the transition keeps those in the index)
  Returns  1 removed, 0 kept (or not there)
]]
local state = redis.call('HGET', KEYS[2], 'state')
if state then
  for i = 1, #ARGV do
    if ARGV[i] == state then
      return 0
    end
  end
end
return redis.call('ZREM', KEYS[1], KEYS[2])
