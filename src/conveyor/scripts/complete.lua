-- complete: finish jobs (active -> completed), apply retention, then fetch more.
-- ARGV: 1 events maxlen, 2 keep count (-1 = unbounded), 3 keep age ms (-1 = unbounded),
--       4 worker id, 5 lease ms, 6 jobs to fetch (0 = none), 7 number of jobs n,
--       then 3 per job: id, fencing token, result JSON
-- Returns: {codes, fetched} where codes has one integer per job (1 completed,
--   0 lease lost: the token is stale or the job is no longer active) and fetched is the
--   reply of `activate` (see _prelude.lua).
local maxlen, keep_count, keep_age = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local now = now_ms()
local n = tonumber(ARGV[7])

local function finish(first, last, codes)
  local ids, tokens = {}, {}
  for i = first, last do
    ids[#ids + 1], tokens[#tokens + 1] = ARGV[5 + i * 3], ARGV[6 + i * 3]
  end
  local held = leases_held(ids, tokens)
  local finished = int(now)
  local done, states, results, times, scores = {}, {}, {}, {}, {}
  for i, id in ipairs(ids) do
    if held[i] then
      local k = #states
      states[k + 1], states[k + 2] = id, 'completed'
      results[k + 1], results[k + 2] = id, ARGV[7 + (first + i - 1) * 3]
      times[k + 1], times[k + 2] = id, finished
      scores[k + 1], scores[k + 2] = finished, id
      done[#done + 1] = id
    end
    codes[#codes + 1] = held[i] and 1 or 0
  end
  if #done == 0 then return end
  flow.leave_active_all(done)
  redis.call('HSET', F.state, unpack(states))
  redis.call('HSET', F.result, unpack(results))
  redis.call('HSET', F.finished, unpack(times))
  redis.call('HDEL', F.cancel, unpack(done))
  redis.call('ZADD', K_COMPLETED, unpack(scores))
  for _, id in ipairs(done) do emit(maxlen, id, 'completed') end
end

local codes = {}
for first = 1, n, CHUNK do finish(first, math.min(n, first + CHUNK - 1), codes) end
trim(K_COMPLETED, keep_count, keep_age, now)
return {codes, activate(maxlen, ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6]), now)}
