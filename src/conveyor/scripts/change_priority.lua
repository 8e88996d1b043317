-- change_priority: set a job's priority; a waiting job moves to its new place.
-- ARGV: 1 events maxlen, 2 id, 3 priority
-- Returns: 1 changed, 0 no such job, -1 finished (nothing changed).
local id, priority = ARGV[2], ARGV[3]
local state = redis.call('HGET', F.state, id)
if not state then return 0 end
if state ~= 'waiting' and state ~= 'delayed' and state ~= 'active' then return -1 end
redis.call('HSET', F.priority, id, priority)
if state == 'waiting' then
  if flow.unwait(id) then
    enqueue_waiting(id, false) -- a grouped job moves within its group's line
  else
    redis.call('ZADD', K_WAIT, wait_score(priority, false), id)
  end
end
emit(ARGV[1], id, 'priority', {'priority', priority})
return 1
