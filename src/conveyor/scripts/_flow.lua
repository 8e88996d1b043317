-- Flow control (conveyor.limiter): rate limits, concurrency limits, fairness groups and
-- start deadlines. Loaded after _prelude.lua, before the script itself; fills the `flow`
-- table the prelude declares, so the prelude's transitions can call into it.
--
-- KEYS from FC_BASE + 1 on (conveyor.keys.FLOW_STRUCTURES), all under the queue's hash tag:
--   1 config    hash  rate "N:period ms", conc N, krate, kconc (per-key defaults),
--                     k:<group> "N:period ms:conc" per-group overrides, overrides (count)
--   2 lanes     zset  all scores 0, groups with waiting jobs that may run; served in
--                     lexicographic order from the cursor on, wrapping round (round-robin)
--   3 blocked   zset  group -> reopen ms: held back by a rate window or a throttle
--   4 full      set   groups at their concurrency limit; a finished job puts one back
--   5 jobs      zset  all scores 0, lex order "group\0score\0id": each group's waiting
--                     jobs in priority/FIFO order, a group's head found in O(log n)
--   6 inflight  hash  group -> jobs active now, for groups under a concurrency limit
--                     (lease-based: released with the lease)
--   7 log       zset  all scores 0, lex order "group\0start ms\0id": sliding rate windows;
--                     the queue-wide window uses the group "\1" (groups are printable)
--   8 logexp    zset  group -> ms after which its whole log is stale (bounded cleanup)
--   9 expiry    zset  id -> start deadline ms (kept lazily until the deadline passes)
--  10 cursor    string: the group served last
--  11 job       hash  id -> "group\0score\0id": its member in `jobs` while it waits, the
--                     last one (no longer in `jobs`) after; "group\0" before it first waits
-- Queues that never had a grouped job skip all per-job work here (one EXISTS per call).
-- A group with waiting jobs is in exactly one of lanes, blocked, full; an empty group may be
-- left in one of them and is dropped when next visited.

local FC = {}
local FC_JOB -- a per-job field of its own, not in F: plain queues never touch it
local FC_NAMES = {'config', 'lanes', 'blocked', 'full', 'jobs', 'inflight', 'log', 'logexp',
  'expiry', 'cursor'}

local QUEUE_LANE = '\1'
local SWEEP = 1000

local function pad(n)
  return string.format('%017.0f', n)
end

local function lane_range(lane)
  return '[' .. lane .. '\0', '(' .. lane .. '\1'
end

local function earliest(a, b)
  if a < 0 then return b end
  if b < 0 then return a end
  return math.min(a, b)
end

-- A group (back) in the rotation: it is served when the cursor next passes it.
local function ready(lane)
  redis.call('ZADD', FC.lanes, 0, lane)
end

-- "N:period ms[:conc]" -> {n, period} (nil when unset or 0) and conc (nil when unset or 0).
local function parse_limit(raw)
  if not raw then return nil, nil end
  local n, period, conc = string.match(raw, '^(%d+):(%d+):?(%d*)$')
  local rate = nil
  if tonumber(n) > 0 then rate = {n = tonumber(n), period = tonumber(period)} end
  conc = tonumber(conc)
  if conc == 0 then conc = nil end
  return rate, conc
end

function flow.config()
  local raw = redis.call('HMGET', FC.config, 'rate', 'conc', 'krate', 'kconc', 'overrides')
  local cfg = {}
  cfg.rate = parse_limit(raw[1])
  cfg.conc = tonumber(raw[2])
  cfg.krate = parse_limit(raw[3])
  cfg.kconc = tonumber(raw[4])
  cfg.overrides = tonumber(raw[5] or '0') > 0
  return cfg
end

-- True when the queue uses flow control at all; plain queues keep the plain fetch.
function flow.active()
  return redis.call('EXISTS', FC.config, FC.lanes, FC.blocked, FC.expiry) > 0
end

-- Whether the queue has ever had a grouped job: read once per script call, so queues
-- that never use groups pay one EXISTS per call instead of one HGET per job.
local groups_used = nil
local function groups_used_now()
  if groups_used == nil then groups_used = redis.call('EXISTS', FC_JOB) == 1 end
  return groups_used
end

local function group_of(id)
  if not groups_used_now() then return nil end
  local member = redis.call('HGET', FC_JOB, id)
  if not member then return nil end
  return string.sub(member, 1, string.find(member, '\0', 1, true) - 1)
end

-- A job is deleted (retention, remove): drop its flow-control field (remove.lua takes a
-- waiting job out of its line first, with flow.unwait).
function flow.forget(ids)
  if groups_used_now() then redis.call('HDEL', FC_JOB, unpack(ids)) end
end

-- Called when a job is added: note its group and start deadline, which prepare() puts at
-- the very front of the spec ({"fc":{"g":"group","x":deadline ms},...) so plain jobs cost
-- one string comparison. Groups contain no '"' (validated), so the pattern is exact.
-- Returns whether the job is under flow control (has a group or a deadline).
function flow.admit(id, spec, now)
  if string.sub(spec, 1, 6) ~= '{"fc":' then return false end
  local group, deadline = string.match(spec, '^{"fc":{"g":"([^"]*)","x":(%-?%d+)}')
  if group and group ~= '' then
    redis.call('HSET', FC_JOB, id, group .. '\0')
    groups_used = true
  end
  if deadline and tonumber(deadline) >= 0 then
    redis.call('ZADD', FC.expiry, int(now + tonumber(deadline)), id)
  end
  return true
end

-- Put a grouped job in its group's line; false for a job without a group (K_WAIT's).
function flow.route(id, score)
  local lane = group_of(id)
  if not lane then return false end
  local low, high = lane_range(lane)
  local had = redis.call('ZRANGE', FC.jobs, low, high, 'BYLEX', 'LIMIT', 0, 1)
  local member = lane .. '\0' .. pad(tonumber(score)) .. '\0' .. id
  redis.call('ZADD', FC.jobs, 0, member)
  redis.call('HSET', FC_JOB, id, member)
  if #had == 0 and not redis.call('ZSCORE', FC.blocked, lane)
      and redis.call('SISMEMBER', FC.full, lane) == 0 then
    ready(lane)
  end
  return true
end

-- Take a grouped job out of its line (cancelled, removed, re-prioritised, debounced);
-- true if it was in it. Its field keeps the member: the job's group is read from it.
function flow.unwait(id)
  if not groups_used_now() then return false end
  local member = redis.call('HGET', FC_JOB, id)
  return member ~= false and redis.call('ZREM', FC.jobs, member) == 1
end

-- Free one of a group's slots.
local function give_back(lane)
  if redis.call('HINCRBY', FC.inflight, lane, -1) <= 0 then redis.call('HDEL', FC.inflight, lane) end
end

-- Read once per script call, the first time a job leaves active.
local queue_conc, group_conc, any_full = nil, nil, nil
local function read_conc_config()
  local raw = redis.call('HMGET', FC.config, 'conc', 'kconc', 'overrides')
  queue_conc = raw[1] ~= false
  -- Slots are only counted for groups under a concurrency limit (see lane_allows); with
  -- per-group overrides some may be, so every grouped job gives one back (clamped at 0).
  group_conc = raw[2] ~= false or raw[3] ~= false
end
local function queue_has_conc_limit()
  if queue_conc == nil then read_conc_config() end
  return queue_conc
end
local function groups_have_conc_limits()
  if group_conc == nil then read_conc_config() end
  return group_conc
end
local function some_group_full()
  if any_full == nil then any_full = redis.call('EXISTS', FC.full) == 1 end
  return any_full
end

-- Every way out of active goes through here, so a slot is freed exactly when the lease
-- ends: complete, fail, cancel, stall, release. Returns 1 if the job was active.
function flow.leave_active(id)
  if redis.call('ZREM', K_ACTIVE, id) == 0 then return 0 end
  local lane = groups_have_conc_limits() and group_of(id)
  if lane then
    give_back(lane)
    if some_group_full() and redis.call('SREM', FC.full, lane) == 1 then
      ready(lane)
      wake_worker()
    end
  end
  if queue_has_conc_limit() then wake_worker() end
  return 1
end

-- leave_active for jobs known to be active (their leases were just checked): with no
-- concurrency limit to give slots back to, one ZREM for them all.
function flow.leave_active_all(ids)
  if #ids == 0 then return end
  if groups_have_conc_limits() or queue_has_conc_limit() then
    for _, id in ipairs(ids) do flow.leave_active(id) end
  else
    redis.call('ZREM', K_ACTIVE, unpack(ids))
  end
end

-- After a limit change: when no group has a concurrency limit any more, slots are no
-- longer given back, so the counts are dropped rather than left to go stale.
function flow.forget_slots_if_unlimited()
  if redis.call('HEXISTS', FC.config, 'kconc') == 0
      and redis.call('HEXISTS', FC.config, 'overrides') == 0 then
    redis.call('DEL', FC.inflight)
  end
end

-- Hold a job's whole group back for `ms` (a handler raised RateLimited with throttle).
function flow.throttle(id, ms, now)
  local lane = group_of(id)
  if not lane then return 0 end
  redis.call('ZREM', FC.lanes, lane)
  redis.call('SREM', FC.full, lane)
  redis.call('ZADD', FC.blocked, 'GT', int(now + ms), lane)
  return 1
end

-- Jobs whose start deadline passed while they waited go to dead. Returns whether every
-- due entry was handled (the limit was not hit) and how many jobs died.
function flow.expire_due(now, maxlen, limit)
  local due = redis.call('ZRANGE', FC.expiry, '-inf', int(now), 'BYSCORE', 'LIMIT', 0, limit)
  local died = 0
  for _, id in ipairs(due) do
    redis.call('ZREM', FC.expiry, id)
    local state = redis.call('HGET', F.state, id)
    if (state == 'waiting' or state == 'delayed') and redis.call('HEXISTS', F.started, id) == 0
    then
      redis.call('HSET', F.error, id, cjson.encode({
        type = 'Expired', message = 'its start deadline passed while it waited'}))
      bury(K_DEAD, 'dead', id, now, maxlen, 'expired: not started before its deadline')
      died = died + 1
    end
  end
  return #due < limit, died
end

-- Rate-limited groups whose window reopened rejoin the rotation.
local function unblock_due(now)
  local due = redis.call('ZRANGE', FC.blocked, '-inf', int(now), 'BYSCORE', 'LIMIT', 0, SWEEP)
  for _, lane in ipairs(due) do
    redis.call('ZREM', FC.blocked, lane)
    ready(lane)
  end
end

-- Forget stale rate logs of groups that stopped running (bounded per call).
local function drop_stale_logs(now)
  local stale = redis.call('ZRANGE', FC.logexp, '-inf', int(now), 'BYSCORE', 'LIMIT', 0, 100)
  for _, lane in ipairs(stale) do
    local low, high = lane_range(lane)
    redis.call('ZREMRANGEBYLEX', FC.log, low, high)
    redis.call('ZREM', FC.logexp, lane)
  end
end

-- Starts of `lane` within the sliding window (now - period, now]. Unless `exact`, a count
-- below `limit` may include starts that left the window: the log is only trimmed when it
-- could be full, which is all a yes/no check needs, and keeps it at most `limit` entries
-- per group (plus those of quiet groups, dropped via logexp).
local function window(lane, limit, period, now, exact)
  local low, high = lane_range(lane)
  if not exact then
    local n = redis.call('ZLEXCOUNT', FC.log, low, high)
    if n < limit then return n end
  end
  redis.call('ZREMRANGEBYLEX', FC.log, low, '(' .. lane .. '\0' .. pad(now - period + 1))
  return redis.call('ZLEXCOUNT', FC.log, low, high)
end

-- When the window of `lane` next has room: the oldest start in it plus the period.
local function reopens(lane, period, now)
  local low, high = lane_range(lane)
  local head = redis.call('ZRANGE', FC.log, low, high, 'BYLEX', 'LIMIT', 0, 1)
  if #head == 0 then return now + period end
  return tonumber(string.sub(head[1], #lane + 2, #lane + 18)) + period
end

-- How many jobs the queue-wide limits let this fetch start, and when more may start if
-- the rate window is what stops it (-1: not known, a finished job will wake a worker).
local function queue_budget(cfg, count, now)
  local budget, reopen = count, -1
  if cfg.conc then budget = math.min(budget, cfg.conc - redis.call('ZCARD', K_ACTIVE)) end
  if cfg.rate and budget > 0 then
    local room = cfg.rate.n - window(QUEUE_LANE, cfg.rate.n, cfg.rate.period, now, true)
    if room <= budget then reopen = reopens(QUEUE_LANE, cfg.rate.period, now) end
    budget = math.min(budget, room)
  end
  return math.max(budget, 0), reopen
end

local function lane_limits(cfg, lane)
  if cfg.overrides then
    local raw = redis.call('HGET', FC.config, 'k:' .. lane)
    if raw then return parse_limit(raw) end
  end
  return cfg.krate, cfg.kconc
end

-- A group leaves the rotation with no jobs left: its log may go once its window passed.
local function log_expires(cfg, lane, now)
  local rate = lane_limits(cfg, lane)
  if rate then redis.call('ZADD', FC.logexp, 'GT', int(now + rate.period), lane) end
end

-- One fetch's bookkeeping. Writes that many jobs share are collected and made once at the
-- end (flush): log entries, and the taken jobs' removal from their lines.
local function new_batch(cfg, now, start)
  return {cfg = cfg, now = now, start = start, taken = 0, log = {}, lined = {}, took = {}}
end

-- Start `id`, counting it against the queue's window and, with `rate`, its group's.
local function begin(b, id, lane, rate)
  b.start(id)
  b.taken = b.taken + 1
  if not (rate or b.cfg.rate) then return end
  local stamp = '\0' .. pad(b.now) .. '\0' .. id
  if b.cfg.rate then b.log[#b.log + 1] = QUEUE_LANE .. stamp end
  if rate then b.log[#b.log + 1] = lane .. stamp end
end

-- Members per variadic call: CHUNK, from the prelude (unpack() has a stack limit).
local function call_chunked(command, key, members, score)
  for first = 1, #members, CHUNK do
    local args = {command, key}
    for i = first, math.min(first + CHUNK - 1, #members) do
      if score then args[#args + 1] = score end
      args[#args + 1] = members[i]
    end
    redis.call(unpack(args))
  end
end

local function flush(b)
  call_chunked('ZADD', FC.log, b.log, 0)
  call_chunked('ZREM', FC.jobs, b.lined, nil)
end

local function take_plain(b, n)
  if n <= 0 then return end
  local popped = redis.call('ZPOPMIN', K_WAIT, n)
  for i = 1, #popped, 2 do begin(b, popped[i], nil, nil) end
end

-- Serve one group: start its next job if its limits allow. A group held back goes to
-- blocked or full, an empty one leaves the rotation; either way it leaves `lanes`.
local function serve(b, lane)
  local rate, conc = lane_limits(b.cfg, lane)
  local took = b.took[lane] or 0
  if rate and window(lane, rate.n - took, rate.period, b.now) + took >= rate.n then
    redis.call('ZREM', FC.lanes, lane)
    redis.call('ZADD', FC.blocked, int(reopens(lane, rate.period, b.now)), lane)
    return
  end
  -- Take the slot first and give it back if over: one write instead of a read and a write.
  if conc and redis.call('HINCRBY', FC.inflight, lane, 1) > conc then
    give_back(lane)
    redis.call('ZREM', FC.lanes, lane)
    redis.call('SADD', FC.full, lane)
    any_full = true
    return
  end
  local low, high = lane_range(lane)
  local head = redis.call('ZRANGE', FC.jobs, low, high, 'BYLEX', 'LIMIT', took, 2)
  if #head == 0 then
    if conc then give_back(lane) end
    redis.call('ZREM', FC.lanes, lane)
    log_expires(b.cfg, lane, b.now)
    return
  end
  b.lined[#b.lined + 1] = head[1]
  b.took[lane] = took + 1
  begin(b, string.sub(head[1], #lane + 20), lane, rate)
  if #head == 1 then
    redis.call('ZREM', FC.lanes, lane)
    log_expires(b.cfg, lane, b.now)
  end
end

-- Round-robin over the groups: from the group after the cursor on, in lexicographic order,
-- one job per group, wrapping round to the first group; stops when the budget is spent or
-- a whole round started nothing. Serving a group moves nothing in `lanes`.
local function take_lanes(b, n)
  local goal = b.taken + n
  local cursor = redis.call('GET', FC.cursor) or ''
  local taken_at_wrap = -1
  while b.taken < goal do
    local from = cursor == '' and '-' or '(' .. cursor
    local lanes = redis.call('ZRANGE', FC.lanes, from, '+', 'BYLEX', 'LIMIT', 0, goal - b.taken)
    if #lanes == 0 then
      if cursor == '' or taken_at_wrap == b.taken then break end
      taken_at_wrap, cursor = b.taken, '' -- wrap round
    end
    for _, lane in ipairs(lanes) do
      if b.taken >= goal then break end
      serve(b, lane)
      cursor = lane
    end
  end
  redis.call('SET', FC.cursor, cursor)
end

-- The flow-controlled fetch: sweep deadlines, reopen windows, apply the queue-wide limits,
-- then share the budget between ungrouped jobs (one share, as if they were one group) and
-- the groups. Returns when a limit that held jobs back reopens (-1: none is known).
function flow.fetch(count, now, maxlen, start)
  local swept = flow.expire_due(now, maxlen, SWEEP)
  if not swept then return now end
  unblock_due(now)
  drop_stale_logs(now)
  local cfg = flow.config()
  local budget, reopen = queue_budget(cfg, count, now)
  if budget <= 0 then return reopen end
  local b = new_batch(cfg, now, start)
  local lanes = redis.call('ZCARD', FC.lanes)
  take_plain(b, math.ceil(budget / (lanes + 1)))
  if lanes > 0 then take_lanes(b, budget - b.taken) end
  take_plain(b, budget - b.taken)
  flush(b)
  -- Others may be blocked on the marker: pass the wake-up on while work remains.
  if b.taken > 0 and redis.call('ZCARD', K_WAIT) + redis.call('ZCARD', FC.lanes) > 0 then
    wake_worker()
  end
  local next_blocked = redis.call('ZRANGE', FC.blocked, 0, 0, 'WITHSCORES')
  if #next_blocked > 0 then reopen = earliest(reopen, tonumber(next_blocked[2])) end
  return reopen
end

-- Each call starts from its own keys and with nothing read yet (see bind_queue_keys).
local function bind_flow_keys()
  for i, name in ipairs(FC_NAMES) do FC[name] = KEYS[FC_BASE + i] end
  FC_JOB = KEYS[FC_BASE + 11]
  groups_used = nil
  queue_conc, group_conc, any_full = nil, nil, nil
end
