-- Flows (conveyor.flows): helpers for jobs in other queues than the script's own, appended
-- to the tree_* scripts only. A flow's jobs may live in several queues, so these scripts
-- receive, after their own KEYS, one block of keys per other queue (conveyor.flows.keys
-- TREE_BLOCK order) and write through these helpers; see docs/flows.md for why this is
-- atomic on one Redis server.

local TREE_BLOCK = {'waiting', 'delayed', 'dead', 'marker', 'events', 'seq', 'wc',
  'spec', 'state', 'priority', 'ready', 'finished', 'error'}

-- The queue block whose first key is KEYS[first].
local function tree_queue(first)
  local Q = {}
  for i, name in ipairs(TREE_BLOCK) do Q[name] = KEYS[first + i - 1] end
  return Q
end

local function tree_emit(Q, maxlen, id, event, extra)
  local args = {'XADD', Q.events, 'MAXLEN', '~', maxlen, '*', 'job', id, 'event', event}
  for i = 1, #(extra or {}) do args[#args + 1] = extra[i] end
  redis.call(unpack(args))
end

-- Make a job runnable in its queue, behind its priority peers (as enqueue_waiting does).
local function tree_wait(Q, id)
  local priority = tonumber(redis.call('HGET', Q.priority, id) or '0')
  local seq = redis.call('INCR', Q.seq)
  redis.call('HSET', Q.state, id, 'waiting')
  redis.call('ZADD', Q.waiting, int((1000 - priority) * PRIORITY_SPAN + seq), id)
  redis.call('ZADD', Q.marker, 0, 'm')
end

-- A parent whose children are all done (or no longer block it) becomes runnable.
local function tree_release(Q, id, maxlen)
  redis.call('ZREM', Q.wc, id)
  tree_wait(Q, id)
  tree_emit(Q, maxlen, id, 'waiting', {'reason', 'children done'})
end

local function tree_bury(Q, id, now, maxlen, error_json)
  redis.call('ZREM', Q.wc, id)
  redis.call('HSET', Q.state, id, 'dead')
  redis.call('HSET', Q.finished, id, int(now))
  redis.call('HSET', Q.error, id, error_json)
  redis.call('ZADD', Q.dead, int(now), id)
  tree_emit(Q, maxlen, id, 'dead', {'reason', 'a child failed'})
end

-- Read the ancestors of a child from ARGV[at]: count n, then 5 per ancestor, nearest first:
-- KEYS index of its queue block, KEYS index of its flow hash (pending count, and one field
-- "<queue>:<id>" per finished child), queue name, job id, and the failure policy of the
-- node below it (fail | ignore | continue). Returns them and the ARGV index after them.
local function tree_ancestors(at)
  local n, list = tonumber(ARGV[at]), {}
  for i = 1, n do
    local j = at + 5 * (i - 1)
    list[i] = {Q = tree_queue(tonumber(ARGV[j + 1])), flow = KEYS[tonumber(ARGV[j + 2])],
      queue = ARGV[j + 3], id = ARGV[j + 4], policy = ARGV[j + 5]}
  end
  return list, at + 1 + 5 * n
end

-- Tell the ancestors that a child ended (state completed | dead | cancelled; payload: its
-- result or error JSON). Returns 0 recorded (or already recorded: idempotent), 1 the parent
-- became runnable, 2 the parent failed (and each ancestor above whose policy is fail).
local function tree_notify(ancestors, ref, state, payload, now, maxlen)
  for _, A in ipairs(ancestors) do
    local failed = state ~= 'completed'
    local record = {state = state, ignored = failed and A.policy == 'ignore'}
    if failed then record.error = payload else record.result = payload end
    if redis.call('HSETNX', A.flow, ref, cjson.encode(record)) == 0 then return 0 end
    if redis.call('HGET', A.Q.state, A.id) ~= 'waiting-children' then return 0 end
    if not (failed and A.policy == 'fail') then
      if redis.call('HINCRBY', A.flow, 'pending', -1) > 0 then return 0 end
      tree_release(A.Q, A.id, maxlen)
      return 1
    end
    payload = cjson.encode({type = 'ChildFailed',
      message = 'child ' .. ref .. ' ended ' .. state .. '; the failure policy is fail'})
    tree_bury(A.Q, A.id, now, maxlen, payload)
    ref, state = A.queue .. ':' .. A.id, 'dead'
  end
  return 2
end
