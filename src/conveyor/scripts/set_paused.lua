-- set_paused: pause (workers fetch nothing) or resume a queue.
-- ARGV: 1 events maxlen, 2 '1' pause | '0' resume
-- Returns: 1 changed, 0 already so.
local paused = redis.call('HEXISTS', K_META, 'paused') == 1
if ARGV[2] == '1' then
  if paused then return 0 end
  redis.call('HSET', K_META, 'paused', '1')
  emit(ARGV[1], '', 'paused')
else
  if not paused then return 0 end
  redis.call('HDEL', K_META, 'paused')
  emit(ARGV[1], '', 'resumed')
  wake_worker()
end
return 1
