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

-- Tell the ancestors that a child ended. ARGV from `at` on: ancestor count n, then 3 per
-- ancestor, nearest first: queue name, job id, the failure policy of the node below it
-- (fail | ignore | continue). KEYS from `kfirst` on: per ancestor one queue block, then
-- its flow hash (pending count, and one field "<queue>:<id>" per finished child).
-- Returns 0 recorded, 1 the parent became runnable, 2 the parent failed (and so on up).
local function tree_notify(at, kfirst, ref, state, payload, now, maxlen)
  local n = tonumber(ARGV[at])
  local width = #TREE_BLOCK + 1
  for i = 1, n do
    local queue, id = ARGV[at + 3 * i - 2], ARGV[at + 3 * i - 1]
    local policy = ARGV[at + 3 * i]
    local Q = tree_queue(kfirst + (i - 1) * width)
    local flow_hash = KEYS[kfirst + (i - 1) * width + #TREE_BLOCK]
    local failed = state ~= 'completed'
    local record = {state = state, ignored = failed and policy == 'ignore'}
    if failed then record.error = payload else record.result = payload end
    if redis.call('HSETNX', flow_hash, ref, cjson.encode(record)) == 0 then return 0 end
    if redis.call('HGET', Q.state, id) ~= 'waiting-children' then return 0 end
    if not (failed and policy == 'fail') then
      if redis.call('HINCRBY', flow_hash, 'pending', -1) > 0 then return 0 end
      tree_release(Q, id, maxlen)
      return 1
    end
    payload = cjson.encode({type = 'ChildFailed',
      message = 'child ' .. ref .. ' ended ' .. state .. '; the failure policy is fail'})
    tree_bury(Q, id, now, maxlen, payload)
    ref, state = queue .. ':' .. id, 'dead'
  end
  return 2
end
