-- A job record's key `<base>job:<id>` gives the base of the keys listed with it (same hash tag;
-- the spellings are those of keys.ts) and the job id.
local function job_key_parts(key)
  return (string.gsub(key, 'job:[^:]*$', '')), string.match(key, 'job:([^:]*)$')
end
-- List a job in the listing indexes: every job, by state, by tenant, by tenant and state.
local function list_job(base, jobId, tenant, state)
  local idx = base .. 'idx:jobs'
  redis.call('ZADD', idx, 0, jobId)
  redis.call('ZADD', idx .. ':s:' .. state, 0, jobId)
  redis.call('ZADD', idx .. ':t:' .. tenant, 0, jobId)
  redis.call('ZADD', idx .. ':t:' .. tenant .. ':s:' .. state, 0, jobId)
end
