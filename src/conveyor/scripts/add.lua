-- add: enqueue one or more jobs (new -> waiting | delayed).
-- ARGV: 1 events maxlen, then 4 per job: id, spec JSON, priority, delay ms
-- Returns: one integer per job: 1 added, 0 an existing job has that id (nothing changed).
local maxlen = ARGV[1]
local now = now_ms()
local results = {}
for i = 2, #ARGV, 4 do
  local id, spec, priority, delay = ARGV[i], ARGV[i + 1], ARGV[i + 2], tonumber(ARGV[i + 3])
  if redis.call('HSETNX', F.spec, id, spec) == 0 then
    results[#results + 1] = 0
  else
    flow.admit(id, spec, now)
    redis.call('HSET', F.priority, id, priority)
    if delay > 0 then
      local due = now + delay
      redis.call('HSET', F.state, id, 'delayed')
      redis.call('HSET', F.ready, id, int(due))
      redis.call('ZADD', K_DELAYED, int(due), id)
      emit(maxlen, id, 'delayed', {'due', int(due)})
    else
      enqueue_waiting(id, false)
      emit(maxlen, id, 'waiting')
    end
    results[#results + 1] = 1
  end
end
if #results > 0 then wake_worker() end
return results
