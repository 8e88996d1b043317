-- cancel: stop a job (waiting | delayed -> cancelled; active: flag it for its worker).
-- ARGV: 1 events maxlen, 2 keep count (-1 = unbounded), 3 keep age ms (-1), 4 id, 5 reason
-- Returns: 1 cancelled, 2 cancellation requested (active: the worker cancels the handler
--   at its next lease renewal), 0 no such job, -1 already finished (nothing changed).
local maxlen, id = ARGV[1], ARGV[4]
local state = redis.call('HGET', F.state, id)
if not state then return 0 end
if state == 'waiting' or state == 'delayed' then
  local now = now_ms()
  bury(K_CANCELLED, 'cancelled', id, now, maxlen, ARGV[5])
  trim(K_CANCELLED, tonumber(ARGV[2]), tonumber(ARGV[3]), now)
  return 1
end
if state == 'active' then
  redis.call('HSET', F.cancel, id, ARGV[5])
  emit(maxlen, id, 'cancel-requested', {'reason', ARGV[5]})
  return 2
end
return -1
