-- tree_add: enqueue a whole flow in one step (new -> waiting | delayed for jobs without
-- children, new -> waiting-children for parents). Nothing is written if any id is taken.
-- KEYS: one queue block per queue of the flow (conveyor.flows.keys.TREE_BLOCK), then one
--   flow hash per parent (pending children count, later each child's outcome).
-- ARGV: 1 events maxlen, then 7 per job: KEYS index of its queue block, id, spec JSON,
--       priority, delay ms (ignored for parents), KEYS index of its flow hash (0 for a
--       job without children), number of children
-- Returns: {1} added; {0, job index (0-based)} that id already exists in its queue.
local maxlen = ARGV[1]
local jobs = {}
for i = 2, #ARGV, 7 do
  jobs[#jobs + 1] = {Q = tree_queue(tonumber(ARGV[i])), id = ARGV[i + 1], spec = ARGV[i + 2],
    priority = ARGV[i + 3], delay = tonumber(ARGV[i + 4]), flow = tonumber(ARGV[i + 5]),
    children = tonumber(ARGV[i + 6])}
end
for n, job in ipairs(jobs) do
  if redis.call('HEXISTS', job.Q.spec, job.id) == 1 then return {0, n - 1} end
end
local now = now_ms()
for _, job in ipairs(jobs) do
  local Q, id = job.Q, job.id
  redis.call('HSET', Q.spec, id, job.spec)
  redis.call('HSET', Q.priority, id, job.priority)
  if job.children > 0 then
    redis.call('HSET', KEYS[job.flow], 'pending', job.children)
    redis.call('HSET', Q.state, id, 'waiting-children')
    redis.call('ZADD', Q.wc, int(now), id)
    tree_emit(Q, maxlen, id, 'waiting-children')
  elseif job.delay > 0 then
    local due = int(now + job.delay)
    redis.call('HSET', Q.state, id, 'delayed')
    redis.call('HSET', Q.ready, id, due)
    redis.call('ZADD', Q.delayed, due, id)
    redis.call('ZADD', Q.marker, 0, 'm')
    tree_emit(Q, maxlen, id, 'delayed', {'due', due})
  else
    tree_wait(Q, id)
    tree_emit(Q, maxlen, id, 'waiting')
  end
end
return {1}
