--[[
  List a batch's rows once its upload is committed (rows are not listed while the batch is staged,
  so nobody sees half an upload): each job not yet listed goes into the listing indexes under its
  current state, and is marked `indexed` so that transitions keep it there (transition-2.lua).
  KEYS[1..]  the jobs' records (hashes)
  Returns the number listed now. The indexes are derived from the job keys, as in create-1.lua.
]]
--@include job-listing
local listed = 0
for _, key in ipairs(KEYS) do
  local fields = redis.call('HMGET', key, 'tenant', 'state', 'indexed')
  if fields[1] and fields[2] and not fields[3] then
    local base, jobId = job_key_parts(key)
    list_job(base, jobId, fields[1], fields[2])
    redis.call('HSET', key, 'indexed', '1')
    listed = listed + 1
  end
end
return listed
