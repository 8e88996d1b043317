-- recover_stalled: jobs whose lease expired go back to waiting (active -> waiting), or to
-- dead once they stalled more than max stalls (active -> dead).
-- ARGV: 1 events maxlen, 2 max stalls, 3 max jobs to inspect, 4 keep dead count,
--       5 keep dead age ms
-- Also sends waiting jobs whose start deadline passed to dead (not listed in the reply).
-- Returns: {requeued ids, dead ids}
local maxlen, max_stalls, limit = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local now = now_ms()
local expired = redis.call('ZRANGE', K_ACTIVE, '-inf', int(now), 'BYSCORE', 'LIMIT', 0, limit)
local requeued, buried = {}, {}
for _, id in ipairs(expired) do
  local stalls = redis.call('HINCRBY', F.stalls, id, 1)
  local record = cjson.encode({
    outcome = 'stalled', worker = redis.call('HGET', F.worker, id) or '',
    started = tonumber(redis.call('HGET', F.started, id) or '0'), finished = now,
    error = {type = 'Stalled', message = 'lease expired: the worker stopped renewing it'},
  })
  append_history(id, record)
  if stalls > max_stalls then
    redis.call('HSET', F.error, id, cjson.encode({type = 'Stalled',
      message = 'stalled ' .. stalls .. ' times (max ' .. max_stalls .. ')'}))
    bury(K_DEAD, 'dead', id, now, maxlen, 'stalled too many times')
    buried[#buried + 1] = id
  else
    flow.leave_active(id)
    enqueue_waiting(id, true)
    emit(maxlen, id, 'stalled', {'stalls', stalls})
    requeued[#requeued + 1] = id
  end
end
-- The maintenance sweep also expires jobs whose start deadline passed (see _flow.lua).
local _, expired = flow.expire_due(now, maxlen, limit)
if #buried + expired > 0 then trim(K_DEAD, tonumber(ARGV[4]), tonumber(ARGV[5]), now) end
if #requeued > 0 then wake_worker() end
return {requeued, buried}
