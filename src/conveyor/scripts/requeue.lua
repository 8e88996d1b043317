-- requeue: give dead or cancelled jobs a fresh set of attempts (dead | cancelled -> waiting).
-- ARGV: 1 events maxlen, 2 new spec JSON or '' to keep the data, then job ids
--   (a new spec is only allowed with a single id: it is how an operator edits data)
-- Returns: one integer per id: 1 requeued, 0 not dead or cancelled (nothing changed).
local maxlen, spec = ARGV[1], ARGV[2]
local codes = {}
for i = 3, #ARGV do
  local id = ARGV[i]
  local state = redis.call('HGET', F.state, id)
  if state == 'dead' or state == 'cancelled' then
    redis.call('ZREM', K_DEAD, id)
    redis.call('ZREM', K_CANCELLED, id)
    redis.call('HDEL', F.attempts, id)
    redis.call('HDEL', F.stalls, id)
    redis.call('HDEL', F.finished, id)
    if spec ~= '' then redis.call('HSET', F.spec, id, spec) end
    enqueue_waiting(id, false)
    emit(maxlen, id, 'requeued', {'from', state})
    codes[#codes + 1] = 1
  else
    codes[#codes + 1] = 0
  end
end
wake_worker()
return codes
