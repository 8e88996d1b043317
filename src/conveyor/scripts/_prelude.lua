-- The start of the script library (conveyor.scripts builds it: this, _flow.lua, _tree.lua,
-- then each script as one function).
--
-- KEYS (the same layout for every script, built by conveyor.keys.QueueKeys.layout):
--   1 waiting    zset  id -> priority/sequence score
--   2 delayed    zset  id -> due time (ms)
--   3 active     zset  id -> lease expiry (ms)
--   4 completed  zset  id -> finish time (ms)
--   5 dead       zset  id -> death time (ms)
--   6 cancelled  zset  id -> cancel time (ms)
--   7 meta       hash  queue flags (paused)
--   8 marker     zset  one member; idle workers block on it with BZPOPMIN
--   9 events     stream of state changes
--  10 seq        counter for FIFO order within one priority
--  11.. one hash per job field, keyed by job id (see conveyor.keys.JOB_FIELDS)
-- All keys share the queue's hash tag; scripts build no key names of their own.

-- Bound at the start of every call (bind_queue_keys): the library is loaded once and its
-- functions run many times, so nothing here may keep one call's keys for the next.
local K_WAIT, K_DELAYED, K_ACTIVE, K_COMPLETED, K_DEAD, K_CANCELLED, K_META, K_MARKER
local K_EVENTS, K_SEQ
local F = {}
local FIELDS = {'spec', 'state', 'token', 'attempts', 'stalls', 'worker', 'started', 'finished',
  'result', 'error', 'history', 'progress', 'logs', 'cancel', 'ready', 'priority'}

local function bind_queue_keys()
  K_WAIT, K_DELAYED, K_ACTIVE, K_COMPLETED = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
  K_DEAD, K_CANCELLED, K_META, K_MARKER = KEYS[5], KEYS[6], KEYS[7], KEYS[8]
  K_EVENTS, K_SEQ = KEYS[9], KEYS[10]
  for i, field in ipairs(FIELDS) do F[field] = KEYS[10 + i] end
end
-- Flow control (rate and concurrency limits, groups, deadlines): filled by _flow.lua,
-- which is loaded after this prelude; the transitions below call into it.
local flow = {}

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Scores must be written as exact integers: tostring() would round to 14 digits.
local function int(n)
  return string.format('%.0f', n)
end

-- Jobs per variadic call: bounds its argument count (Lua's unpack limit is a few thousand).
local CHUNK = 500

local PRIORITY_SPAN = 4398046511104 -- 2^42 sequence numbers per priority level

local function wait_score(priority, front)
  local seq = 0
  if not front then seq = redis.call('INCR', K_SEQ) end
  return int((1000 - tonumber(priority)) * PRIORITY_SPAN + seq)
end

local function emit(maxlen, id, event, extra)
  if not extra then -- the per-job case: no argument table to build
    redis.call('XADD', K_EVENTS, 'MAXLEN', '~', maxlen, '*', 'job', id, 'event', event)
    return
  end
  local args = {'XADD', K_EVENTS, 'MAXLEN', '~', maxlen, '*', 'job', id, 'event', event}
  for i = 1, #extra do args[#args + 1] = extra[i] end
  redis.call(unpack(args))
end

local function wake_worker()
  redis.call('ZADD', K_MARKER, 0, 'm')
end

-- Put a job in the wait set behind (or, with front, ahead of) its priority peers.
local function enqueue_waiting(id, front)
  local priority = redis.call('HGET', F.priority, id) or 0
  redis.call('HSET', F.state, id, 'waiting')
  local score = wait_score(priority, front)
  if flow.route(id, score) then return end
  redis.call('ZADD', K_WAIT, score, id)
end

-- Drop every field of the given jobs: one variadic HDEL per field hash, not one per job.
local function forget_jobs(ids)
  if #ids == 0 then return end
  flow.forget(ids)
  for _, key in pairs(F) do redis.call('HDEL', key, unpack(ids)) end
end

local function forget_job(id) forget_jobs({id}) end

-- Retention: keep at most keep_count members younger than keep_age_ms (negative = no bound).
-- Bounded work per call so a single transition never scans the whole set.
local TRIM_BATCH = 200
local function trim(zset, keep_count, keep_age_ms, now)
  local doomed = {}
  if keep_age_ms >= 0 then
    doomed = redis.call('ZRANGE', zset, '-inf', '(' .. int(now - keep_age_ms),
      'BYSCORE', 'LIMIT', 0, TRIM_BATCH)
  end
  if keep_count >= 0 then
    local excess = redis.call('ZCARD', zset) - #doomed - keep_count
    if excess > 0 then
      local extra = redis.call('ZRANGE', zset, #doomed, #doomed + math.min(excess, TRIM_BATCH) - 1)
      for i = 1, #extra do doomed[#doomed + 1] = extra[i] end
    end
  end
  if #doomed > 0 then
    forget_jobs(doomed)
    redis.call('ZREM', zset, unpack(doomed))
  end
  return #doomed
end

-- Move due delayed jobs to wait; return how many moved.
local function promote_due(now, limit)
  local due = redis.call('ZRANGE', K_DELAYED, '-inf', int(now), 'BYSCORE', 'LIMIT', 0, limit)
  for i = 1, #due do
    redis.call('ZREM', K_DELAYED, due[i])
    redis.call('HDEL', F.ready, due[i])
    enqueue_waiting(due[i], false)
  end
  if #due > 0 then wake_worker() end
  return #due
end

local function next_delayed_ms()
  local first = redis.call('ZRANGE', K_DELAYED, 0, 0, 'WITHSCORES')
  if #first == 0 then return -1 end
  return tonumber(first[2])
end

-- True when the caller still holds the job's lease (fencing).
local function holds_lease(id, token)
  return redis.call('HGET', F.state, id) == 'active' and redis.call('HGET', F.token, id) == token
end

-- Which of the jobs the caller still holds (see holds_lease), one lookup per field.
-- A job listed twice is held only at its first place: it ends once.
local function leases_held(ids, tokens)
  local states = redis.call('HMGET', F.state, unpack(ids))
  local current = redis.call('HMGET', F.token, unpack(ids))
  local held, seen = {}, {}
  for i, id in ipairs(ids) do
    held[i] = states[i] == 'active' and current[i] == tokens[i] and not seen[id]
    seen[id] = true
  end
  return held
end

-- Lease jobs to `worker` and append them to a fetch reply (5 entries each, see activate).
-- Job fields are one hash per field, so a batch costs one variadic call per field; only
-- the fencing tokens and the events are per job.
local function start_jobs(reply, ids, maxlen, worker, now, expiry)
  if #ids == 0 then return end
  local tokens = redis.call('HMGET', F.token, unpack(ids))
  local attempts = redis.call('HMGET', F.attempts, unpack(ids))
  local stalls = redis.call('HMGET', F.stalls, unpack(ids))
  local specs = redis.call('HMGET', F.spec, unpack(ids))
  local started = int(now)
  local token_args, state_args, worker_args, started_args, active_args = {}, {}, {}, {}, {}
  -- Per job: an index kept by hand (# is a search each time) and the token passed as a
  -- number (redis.call writes a whole number below 2^53 as its exact digits).
  local n = 0
  for i = 1, #ids do
    local id, token = ids[i], (tonumber(tokens[i]) or 0) + 1
    tokens[i] = token
    token_args[n + 1], token_args[n + 2] = id, token
    state_args[n + 1], state_args[n + 2] = id, 'active'
    worker_args[n + 1], worker_args[n + 2] = id, worker
    started_args[n + 1], started_args[n + 2] = id, started
    active_args[n + 1], active_args[n + 2] = expiry, id
    n = n + 2
  end
  redis.call('HSET', F.token, unpack(token_args))
  redis.call('HSET', F.state, unpack(state_args))
  redis.call('HSET', F.worker, unpack(worker_args))
  redis.call('HSET', F.started, unpack(started_args))
  redis.call('ZADD', K_ACTIVE, unpack(active_args))
  n = #reply
  for i = 1, #ids do
    local id = ids[i]
    redis.call('XADD', K_EVENTS, 'MAXLEN', '~', maxlen, '*', 'job', id, 'event', 'active',
      'worker', worker) -- emit() without its per-call argument table: once per leased job
    reply[n + 1], reply[n + 2], reply[n + 3] = id, tokens[i], attempts[i] or '0'
    reply[n + 4], reply[n + 5] = stalls[i] or '0', specs[i]
    n = n + 5
  end
end

-- Lease up to `count` waiting jobs for `worker`. Returns a flat reply:
--   paused (0|1), when to look again in ms (-1 if nothing is due: the next delayed job, or
--   when a rate limit that held jobs back reopens), then 5 per job: id, token, attempts,
--   stalls, spec JSON.
-- Queues without flow control keep the plain pop; see _flow.lua for the rest.
local function activate(maxlen, worker, lease_ms, count, now)
  promote_due(now, 1000)
  local reply = {0, 0}
  local reopen = -1
  if redis.call('HEXISTS', K_META, 'paused') == 1 then
    reply[1] = 1
  elseif count > 0 then
    local expiry = int(now + lease_ms)
    if flow.active() then
      -- Flow control picks the jobs; they are then leased together, as plain ones are.
      local ids = {}
      reopen = flow.fetch(count, now, maxlen, function(id) ids[#ids + 1] = id end)
      for first = 1, #ids, CHUNK do
        start_jobs(reply, {unpack(ids, first, math.min(#ids, first + CHUNK - 1))}, maxlen, worker, now, expiry)
      end
    else
      local remaining, popped_any = count, false
      while remaining > 0 do
        local want = math.min(remaining, CHUNK)
        local popped = redis.call('ZPOPMIN', K_WAIT, want)
        local ids = {}
        for i = 1, #popped, 2 do ids[#ids + 1] = popped[i] end
        start_jobs(reply, ids, maxlen, worker, now, expiry)
        remaining, popped_any = remaining - #ids, popped_any or #ids > 0
        if #ids < want then break end
      end
      -- Others may be blocked on the marker: pass the wake-up on while work remains.
      if popped_any and redis.call('ZCARD', K_WAIT) > 0 then wake_worker() end
    end
  end
  local due = next_delayed_ms()
  reply[2] = due
  if reopen >= 0 and (due < 0 or reopen < due) then reply[2] = reopen end
  return reply
end

local HISTORY_CAP = 50
local function append_history(id, record_json)
  local current = redis.call('HGET', F.history, id)
  local list = current and cjson.decode(current) or {}
  list[#list + 1] = cjson.decode(record_json)
  while #list > HISTORY_CAP do table.remove(list, 1) end
  redis.call('HSET', F.history, id, cjson.encode(list))
end

-- End a job for good in a terminal zset (dead or cancelled).
local function bury(zset, state, id, now, maxlen, reason)
  redis.call('ZREM', K_WAIT, id)
  flow.unwait(id)
  redis.call('ZREM', K_DELAYED, id)
  flow.leave_active(id)
  redis.call('HDEL', F.ready, id)
  redis.call('HDEL', F.cancel, id)
  redis.call('HSET', F.state, id, state)
  redis.call('HSET', F.finished, id, int(now))
  redis.call('ZADD', zset, int(now), id)
  emit(maxlen, id, state, {'reason', reason})
end

local function schedule_retry(id, delay_ms, now)
  flow.leave_active(id)
  if delay_ms > 0 then
    redis.call('HSET', F.state, id, 'delayed')
    redis.call('HSET', F.ready, id, int(now + delay_ms))
    redis.call('ZADD', K_DELAYED, int(now + delay_ms), id)
    wake_worker()
  else
    enqueue_waiting(id, false)
    wake_worker()
  end
end
