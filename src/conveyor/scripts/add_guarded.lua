-- add_guarded: enqueue jobs that carry a dedup key, an idempotency key or admission limits
-- (new -> waiting | delayed, or a standing job is returned or debounced). Plain jobs use
-- add.lua, which pays for none of this.
-- Every job is decided first and nothing is written unless all of them pass.
-- KEYS: the queue layout (see _prelude.lua), then 3 per job from ARGV[4] on:
--   dedup key (string: the standing job id, expires with the window),
--   idempotency key (hash: id, digest; expires after the ttl),
--   admission key (zset: ids admitted under a per-key limit, score: enqueue ms).
--   An unused one is ARGV[5], a placeholder key that is never written.
-- ARGV: 1 events maxlen, 2 max waiting in the queue (-1 = no limit), 3 max waiting per key
--       (-1 = no limit), 4 KEYS index of the first per-job key, 5 placeholder key, then 9 per
--       job: id, spec JSON, priority, delay ms, dedup mode ('' | keep_first | debounce |
--       throttle), dedup window ms, debounce flags ('d' replace data, 't' push back),
--       idempotency digest ('' = none), idempotency ttl ms
-- Returns, when all jobs pass: 2 per job: code, id of the job that stands; codes:
--   1 created, 0 an existing job has that id, 2 duplicate dropped (keep-first),
--   3 throttled, 4 debounced (the standing job was updated), 5 idempotent replay.
-- Refusals (nothing written):
--   {-1, limit field, waiting now, limit, admission key ('' = queue-wide)}: over a limit.
--   {-2, job index (0-based), standing id}: idempotency key reused with other data.
local maxlen, max_wait, max_key = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local kbase, NONE = tonumber(ARGV[4]), ARGV[5]
local FINISHED = {completed = true, dead = true, cancelled = true}
local PENDING = {waiting = true, delayed = true}

local jobs = {}
for i = 6, #ARGV, 9 do
  local k = kbase + #jobs * 3
  jobs[#jobs + 1] = {
    id = ARGV[i], spec = ARGV[i + 1], priority = ARGV[i + 2], delay = tonumber(ARGV[i + 3]),
    mode = ARGV[i + 4], window = ARGV[i + 5], flags = ARGV[i + 6], digest = ARGV[i + 7],
    ttl = ARGV[i + 8], kdedup = KEYS[k], kidem = KEYS[k + 1], kadmit = KEYS[k + 2],
  }
end

local function decide(job)
  if job.digest ~= '' then
    local prior = redis.call('HMGET', job.kidem, 'id', 'digest')
    if prior[1] then
      if prior[2] ~= job.digest then return -2, prior[1] end
      return 5, prior[1]
    end
  end
  if job.mode ~= '' then
    local standing = redis.call('GET', job.kdedup)
    if standing then
      local state = redis.call('HGET', F.state, standing)
      if job.mode == 'throttle' then return 3, standing end
      if job.mode == 'keep_first' and state and not FINISHED[state] then return 2, standing end
      if job.mode == 'debounce' and PENDING[state] then return 4, standing end
    end
  end
  if redis.call('HEXISTS', F.spec, job.id) == 1 then return 0, job.id end
  return 1, job.id
end

-- Index upkeep, not job state: members that left waiting/delayed no longer count.
local function prune(zset)
  local ids = redis.call('ZRANGE', zset, 0, -1)
  local live = 0
  for _, id in ipairs(ids) do
    if PENDING[redis.call('HGET', F.state, id)] then
      live = live + 1
    else
      redis.call('ZREM', zset, id)
    end
  end
  return live
end

local function refusal(new_total, per_key)
  if max_wait >= 0 and new_total > 0 then
    -- Jobs of fairness groups wait in FC.jobs (see _flow.lua), the others in K_WAIT.
    local waiting = redis.call('ZCARD', K_WAIT) + redis.call('ZCARD', FC.jobs)
      + redis.call('ZCARD', K_DELAYED)
    if waiting + new_total > max_wait then return {-1, 'max_waiting', waiting, max_wait, ''} end
  end
  for key, count in pairs(per_key) do
    local size = redis.call('ZCARD', key)
    if size + count > max_key then size = prune(key) end
    if size + count > max_key then return {-1, 'max_waiting_per_key', size, max_key, key} end
  end
  return nil
end

local function insert(job, now)
  redis.call('HSET', F.spec, job.id, job.spec)
  flow.admit(job.id, job.spec, now)
  redis.call('HSET', F.priority, job.id, job.priority)
  if job.delay > 0 then
    local due = int(now + job.delay)
    redis.call('HSET', F.state, job.id, 'delayed')
    redis.call('HSET', F.ready, job.id, due)
    redis.call('ZADD', K_DELAYED, due, job.id)
    emit(maxlen, job.id, 'delayed', {'due', due})
  else
    enqueue_waiting(job.id, false)
    emit(maxlen, job.id, 'waiting')
  end
  if job.mode ~= '' then redis.call('SET', job.kdedup, job.id, 'PX', job.window) end
  if job.digest ~= '' then
    redis.call('HSET', job.kidem, 'id', job.id, 'digest', job.digest)
    redis.call('PEXPIRE', job.kidem, job.ttl)
  end
  if job.kadmit ~= NONE then redis.call('ZADD', job.kadmit, int(now), job.id) end
end

local function debounce(job, id, now)
  if string.find(job.flags, 'd', 1, true) then redis.call('HSET', F.spec, id, job.spec) end
  if string.find(job.flags, 't', 1, true) and job.delay > 0 then
    local due = int(now + job.delay)
    redis.call('ZREM', K_WAIT, id)
    flow.unwait(id)
    redis.call('HSET', F.state, id, 'delayed')
    redis.call('HSET', F.ready, id, due)
    redis.call('ZADD', K_DELAYED, due, id)
  end
  redis.call('SET', job.kdedup, id, 'PX', job.window)
  emit(maxlen, id, 'debounced')
end

local decided, new_total, per_key = {}, 0, {}
for n, job in ipairs(jobs) do
  local code, standing = decide(job)
  if code == -2 then return {-2, n - 1, standing} end
  decided[n] = {code, standing}
  if code == 1 then
    new_total = new_total + 1
    if job.kadmit ~= NONE then per_key[job.kadmit] = (per_key[job.kadmit] or 0) + 1 end
  end
end
local refused = refusal(new_total, per_key)
if refused then return refused end

local now = now_ms()
local reply = {}
for n, job in ipairs(jobs) do
  local code, standing = decided[n][1], decided[n][2]
  if code == 1 then insert(job, now) elseif code == 4 then debounce(job, standing, now) end
  reply[#reply + 1] = code
  reply[#reply + 1] = standing
end
if new_total > 0 then wake_worker() end
return reply
