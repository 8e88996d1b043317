-- fail: end a failed or cancelled attempt (active -> delayed | waiting | dead | cancelled).
-- ARGV: 1 events maxlen, 2 keep count for dead/cancelled (-1 = unbounded),
--       3 keep age ms (-1 = unbounded), 4 id, 5 fencing token, 6 error JSON,
--       7 attempt record JSON (appended to history), 8 outcome: retry | dead | cancelled,
--       9 retry delay ms, 10 count the attempt (1) or not (0, e.g. remote rate limit),
--       11 short reason for the event stream, 12 (optional) throttle ms: hold the job's
--       whole group back that long (RateLimited from a handler; see _flow.lua)
-- Returns: 1 done, 0 lease lost (stale token or job no longer active): nothing written.
local maxlen, keep_count, keep_age = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local id, token, outcome = ARGV[4], ARGV[5], ARGV[8]
if not holds_lease(id, token) then return 0 end
local now = now_ms()
if ARGV[10] == '1' then redis.call('HINCRBY', F.attempts, id, 1) end
redis.call('HSET', F.error, id, ARGV[6])
append_history(id, ARGV[7])
if outcome == 'retry' then
  if tonumber(ARGV[12] or '0') > 0 then flow.throttle(id, tonumber(ARGV[12]), now) end
  schedule_retry(id, tonumber(ARGV[9]), now)
  emit(maxlen, id, 'retrying', {'delay', ARGV[9], 'reason', ARGV[11]})
elseif outcome == 'cancelled' then
  bury(K_CANCELLED, 'cancelled', id, now, maxlen, ARGV[11])
  trim(K_CANCELLED, keep_count, keep_age, now)
else
  bury(K_DEAD, 'dead', id, now, maxlen, ARGV[11])
  trim(K_DEAD, keep_count, keep_age, now)
end
return 1
