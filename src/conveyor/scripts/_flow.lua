-- Flow control (conveyor.limiter): rate limits, concurrency limits, fairness groups and
-- start deadlines. Loaded after _prelude.lua, before the script itself; fills the `flow`
-- table the prelude declares, so the prelude's transitions can call into it.
--
-- KEYS from FC_BASE + 1 on (conveyor.keys.FLOW_STRUCTURES), all under the queue's hash tag:
--   1 config    hash  rate "N:period ms", conc N, krate, kconc (per-key defaults),
--                     k:<group> "N:period ms:conc" per-group overrides, overrides (count)
--   2 lanes     zset  group -> turn: groups with waiting jobs that may run (round-robin)
--   3 blocked   zset  group -> reopen ms: held back by a rate window or a throttle
--   4 full      set   groups at their concurrency limit; a finished job puts one back
--   5 jobs      zset  all scores 0, lex order "group\0score\0id": each group's waiting
--                     jobs in priority/FIFO order, a group's head found in O(log n)
--   6 inflight  hash  group -> jobs active now (lease-based: released with the lease)
--   7 log       zset  all scores 0, lex order "group\0start ms\0id": sliding rate windows;
--                     the queue-wide window uses the group "\1" (groups are printable)
--   8 logexp    zset  group -> ms after which its whole log is stale (bounded cleanup)
--   9 expiry    zset  id -> start deadline ms (kept lazily until the deadline passes)
--  10 turn      counter for the round-robin order
--  11 job:group hash  id -> group;  12 job:pos  hash  id -> member in `jobs` while waiting
-- A group with waiting jobs is in exactly one of lanes, blocked, full; an empty group may be
-- left in one of them and is dropped when next visited.

local FC = {
  config = KEYS[FC_BASE + 1], lanes = KEYS[FC_BASE + 2], blocked = KEYS[FC_BASE + 3],
  full = KEYS[FC_BASE + 4], jobs = KEYS[FC_BASE + 5], inflight = KEYS[FC_BASE + 6],
  log = KEYS[FC_BASE + 7], logexp = KEYS[FC_BASE + 8], expiry = KEYS[FC_BASE + 9],
  turn = KEYS[FC_BASE + 10],
}
F.fcgroup, F.fcpos = KEYS[FC_BASE + 11], KEYS[FC_BASE + 12]

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

local function next_turn()
  return redis.call('INCR', FC.turn)
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

-- Called when a job is added: note its group and start deadline, which prepare() puts at
-- the very front of the spec ({"fc":{"g":"group","x":deadline ms},...) so plain jobs cost
-- one string comparison. Groups contain no '"' (validated), so the pattern is exact.
function flow.admit(id, spec, now)
  if string.sub(spec, 1, 6) ~= '{"fc":' then return end
  local group, deadline = string.match(spec, '^{"fc":{"g":"([^"]*)","x":(%-?%d+)}')
  if group and group ~= '' then redis.call('HSET', F.fcgroup, id, group) end
  if deadline and tonumber(deadline) >= 0 then
    redis.call('ZADD', FC.expiry, int(now + tonumber(deadline)), id)
  end
end

-- Put a grouped job in its group's line; false for a job without a group (K_WAIT's).
function flow.route(id, score)
  local lane = redis.call('HGET', F.fcgroup, id)
  if not lane then return false end
  local low, high = lane_range(lane)
  local had = redis.call('ZRANGE', FC.jobs, low, high, 'BYLEX', 'LIMIT', 0, 1)
  local member = lane .. '\0' .. pad(tonumber(score)) .. '\0' .. id
  redis.call('ZADD', FC.jobs, 0, member)
  redis.call('HSET', F.fcpos, id, member)
  if #had == 0 and not redis.call('ZSCORE', FC.blocked, lane)
      and redis.call('SISMEMBER', FC.full, lane) == 0 then
    redis.call('ZADD', FC.lanes, 'NX', next_turn(), lane)
  end
  return true
end

-- Take a grouped job out of its line (cancelled, removed, re-prioritised, debounced).
function flow.unwait(id)
  local member = redis.call('HGET', F.fcpos, id)
  if not member then return false end
  redis.call('ZREM', FC.jobs, member)
  redis.call('HDEL', F.fcpos, id)
  return true
end

local queue_conc = nil -- read once per script call, only when a job leaves active
local function queue_has_conc_limit()
  if queue_conc == nil then queue_conc = redis.call('HEXISTS', FC.config, 'conc') == 1 end
  return queue_conc
end

-- Every way out of active goes through here, so a slot is freed exactly when the lease
-- ends: complete, fail, cancel, stall, release. Returns 1 if the job was active.
function flow.leave_active(id)
  if redis.call('ZREM', K_ACTIVE, id) == 0 then return 0 end
  local lane = redis.call('HGET', F.fcgroup, id)
  if lane then
    if redis.call('HINCRBY', FC.inflight, lane, -1) <= 0 then
      redis.call('HDEL', FC.inflight, lane)
    end
    if redis.call('SREM', FC.full, lane) == 1 then
      redis.call('ZADD', FC.lanes, 'NX', next_turn(), lane)
      wake_worker()
    end
  end
  if queue_has_conc_limit() then wake_worker() end
  return 1
end

-- Hold a job's whole group back for `ms` (a handler raised RateLimited with throttle).
function flow.throttle(id, ms, now)
  local lane = redis.call('HGET', F.fcgroup, id)
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
    redis.call('ZADD', FC.lanes, 'NX', next_turn(), lane)
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

-- Starts of `lane` within the sliding window (now - period, now]; expired ones are dropped.
-- Returns the count and the start ms of the oldest one still inside.
local function window(lane, period, now)
  local low, high = lane_range(lane)
  local first = '[' .. lane .. '\0' .. pad(now - period + 1)
  redis.call('ZREMRANGEBYLEX', FC.log, low, '(' .. lane .. '\0' .. pad(now - period + 1))
  local n = redis.call('ZLEXCOUNT', FC.log, first, high)
  local oldest = now
  if n > 0 then
    local head = redis.call('ZRANGE', FC.log, first, high, 'BYLEX', 'LIMIT', 0, 1)
    oldest = tonumber(string.sub(head[1], #lane + 2, #lane + 18))
  end
  return n, oldest
end

local function log_start(lane, period, id, now)
  redis.call('ZADD', FC.log, 0, lane .. '\0' .. pad(now) .. '\0' .. id)
  redis.call('ZADD', FC.logexp, 'GT', int(now + period), lane)
end

-- How many jobs the queue-wide limits let this fetch start, and when more may start if
-- the rate window is what stops it (-1: not known, a finished job will wake a worker).
local function queue_budget(cfg, count, now)
  local budget, reopen = count, -1
  if cfg.conc then budget = math.min(budget, cfg.conc - redis.call('ZCARD', K_ACTIVE)) end
  if cfg.rate and budget > 0 then
    local n, oldest = window(QUEUE_LANE, cfg.rate.period, now)
    if cfg.rate.n - n <= budget then reopen = oldest + cfg.rate.period end
    budget = math.min(budget, cfg.rate.n - n)
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

-- 'ok', or why the group may not start a job now: 'full', or 'rate' and its reopen ms.
local function lane_allows(cfg, lane, now)
  local rate, conc = lane_limits(cfg, lane)
  if conc and tonumber(redis.call('HGET', FC.inflight, lane) or '0') >= conc then
    return 'full'
  end
  if rate then
    local n, oldest = window(lane, rate.period, now)
    if n >= rate.n then return 'rate', oldest + rate.period end
  end
  return 'ok'
end

local function note_start(cfg, lane, id, now)
  if cfg.rate then log_start(QUEUE_LANE, cfg.rate.period, id, now) end
  if lane then
    redis.call('HINCRBY', FC.inflight, lane, 1)
    local rate = lane_limits(cfg, lane)
    if rate then log_start(lane, rate.period, id, now) end
  end
end

local function take_plain(cfg, n, now, start)
  if n <= 0 then return 0 end
  local popped = redis.call('ZPOPMIN', K_WAIT, n)
  for i = 1, #popped, 2 do
    start(popped[i])
    note_start(cfg, nil, popped[i], now)
  end
  return #popped / 2
end

-- Visit one group: start its head job if its limits allow, then send the group to the back
-- of the rotation (or to blocked/full, or drop it when it has no more jobs).
local function visit(cfg, lane, now, start)
  local verdict, reopen = lane_allows(cfg, lane, now)
  if verdict ~= 'ok' then
    redis.call('ZREM', FC.lanes, lane)
    if verdict == 'full' then redis.call('SADD', FC.full, lane)
    else redis.call('ZADD', FC.blocked, int(reopen), lane) end
    return 0
  end
  local low, high = lane_range(lane)
  local head = redis.call('ZRANGE', FC.jobs, low, high, 'BYLEX', 'LIMIT', 0, 2)
  if #head == 0 then
    redis.call('ZREM', FC.lanes, lane)
    return 0
  end
  redis.call('ZREM', FC.jobs, head[1])
  local id = string.sub(head[1], #lane + 20)
  redis.call('HDEL', F.fcpos, id)
  start(id)
  note_start(cfg, lane, id, now)
  if #head == 2 then
    redis.call('ZADD', FC.lanes, 'XX', next_turn(), lane)
  else
    redis.call('ZREM', FC.lanes, lane)
  end
  return 1
end

-- Round-robin over the groups: one job per group per turn, groups in turn order.
local function take_lanes(cfg, n, now, start)
  local taken = 0
  while taken < n do
    local lanes = redis.call('ZRANGE', FC.lanes, 0, n - taken - 1)
    if #lanes == 0 then break end
    for _, lane in ipairs(lanes) do
      taken = taken + visit(cfg, lane, now, start)
    end
  end
  return taken
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
  local lanes = redis.call('ZCARD', FC.lanes)
  local taken = take_plain(cfg, math.ceil(budget / (lanes + 1)), now, start)
  if lanes > 0 then taken = taken + take_lanes(cfg, budget - taken, now, start) end
  taken = taken + take_plain(cfg, budget - taken, now, start)
  -- Others may be blocked on the marker: pass the wake-up on while work remains.
  if taken > 0 and redis.call('ZCARD', K_WAIT) + redis.call('ZCARD', FC.lanes) > 0 then
    wake_worker()
  end
  local next_blocked = redis.call('ZRANGE', FC.blocked, 0, 0, 'WITHSCORES')
  if #next_blocked > 0 then reopen = earliest(reopen, tonumber(next_blocked[2])) end
  return reopen
end
