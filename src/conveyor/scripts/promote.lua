-- promote: run delayed jobs now (delayed -> waiting).
-- ARGV: 1 events maxlen, then job ids
-- Returns: one integer per id: 1 promoted, 0 not delayed (or missing).
local maxlen = ARGV[1]
local codes = {}
for i = 2, #ARGV do
  local id = ARGV[i]
  if redis.call('ZREM', K_DELAYED, id) == 1 then
    redis.call('HDEL', F.ready, id)
    enqueue_waiting(id, false)
    emit(maxlen, id, 'promoted')
    codes[#codes + 1] = 1
  else
    codes[#codes + 1] = 0
  end
end
wake_worker()
return codes
