-- complete: finish jobs (active -> completed), apply retention, then fetch more.
-- ARGV: 1 events maxlen, 2 keep count (-1 = unbounded), 3 keep age ms (-1 = unbounded),
--       4 worker id, 5 lease ms, 6 jobs to fetch (0 = none), 7 number of jobs n,
--       then 3 per job: id, fencing token, result JSON
-- Returns: {codes, fetched} where codes has one integer per job (1 completed,
--   0 lease lost: the token is stale or the job is no longer active) and fetched is the
--   reply of `activate` (see _prelude.lua).
local maxlen, keep_count, keep_age = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local now = now_ms()
local codes = {}
local n = tonumber(ARGV[7])
for i = 8, 7 + n * 3, 3 do
  local id, token, result = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  if holds_lease(id, token) then
    flow.leave_active(id)
    redis.call('HSET', F.state, id, 'completed')
    redis.call('HSET', F.result, id, result)
    redis.call('HSET', F.finished, id, int(now))
    redis.call('HDEL', F.cancel, id)
    redis.call('ZADD', K_COMPLETED, int(now), id)
    emit(maxlen, id, 'completed')
    codes[#codes + 1] = 1
  else
    codes[#codes + 1] = 0
  end
end
trim(K_COMPLETED, keep_count, keep_age, now)
return {codes, activate(maxlen, ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6]), now)}
