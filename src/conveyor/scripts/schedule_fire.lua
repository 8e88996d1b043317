-- schedule_fire: claim a schedule's due fire time and enqueue its jobs (new -> waiting), so
-- that any number of scheduler instances enqueue exactly one job per fire time.
-- KEYS: the queue layout, then from ARGV[1] on: definitions, next fire times, runs, paused,
--   last fire (see schedule_upsert.lua).
-- ARGV: 1 KEYS index of the definitions hash, 2 events maxlen, 3 schedule id,
--       4 the next fire ms the caller read (the claim: it must still be the stored one),
--       5 the definition JSON the caller planned with, 6 next fire ms after now (-1 = none),
--       7 max runs (-1 = no limit), then 4 per job: job id (derived from the schedule id and
--       the fire time), spec JSON, priority, fire ms
-- Returns: {code, jobs created}: code 1 claimed (the next fire time moved on, or the
--   schedule ended), -1 lost the claim (another instance fired it, or it was paused or
--   removed), -2 the definition changed since it was read. Nothing is written unless 1.
local b, maxlen, id = tonumber(ARGV[1]), ARGV[2], ARGV[3]
local K_DEF, K_NEXT, K_RUNS, K_LAST = KEYS[b], KEYS[b + 1], KEYS[b + 2], KEYS[b + 4]
local expected, def, next_ms = ARGV[4], ARGV[5], tonumber(ARGV[6])
local max_runs = tonumber(ARGV[7])
local stored = redis.call('ZSCORE', K_NEXT, id)
if not stored or tonumber(stored) ~= tonumber(expected) then return {-1, 0} end
if redis.call('HGET', K_DEF, id) ~= def then return {-2, 0} end

local now = now_ms()
local runs = tonumber(redis.call('HGET', K_RUNS, id) or '0')
local created = 0
for i = 8, #ARGV, 4 do
  if max_runs >= 0 and runs >= max_runs then break end
  local job, spec, priority = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  if redis.call('HSETNX', F.spec, job, spec) == 1 then
    flow.admit(job, spec, now)
    redis.call('HSET', F.priority, job, priority)
    enqueue_waiting(job, false)
    emit(maxlen, job, 'waiting', {'schedule', id, 'fire', ARGV[i + 3]})
    runs = runs + 1
    created = created + 1
  end
  redis.call('HSET', K_LAST, id, ARGV[i + 3])
end
redis.call('HSET', K_RUNS, id, runs)
if next_ms < 0 or (max_runs >= 0 and runs >= max_runs) then
  redis.call('ZREM', K_NEXT, id)
else
  redis.call('ZADD', K_NEXT, next_ms, id)
end
if created > 0 then wake_worker() end
return {1, created}
