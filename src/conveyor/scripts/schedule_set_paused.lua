-- schedule_set_paused: pause a schedule (no fire times until resumed) or resume it.
-- KEYS: the queue layout, then from ARGV[1] on: definitions, next fire times, runs, paused,
--   last fire (see schedule_upsert.lua).
-- ARGV: 1 KEYS index of the definitions hash, 2 schedule id, 3 '1' pause | '0' resume,
--       4 on resume: next fire ms after now (-1 = none; missed fire times are not caught up)
-- Returns: 1 changed, 0 already so, -1 no such schedule (nothing written).
local b, id, pause, next_ms = tonumber(ARGV[1]), ARGV[2], ARGV[3], tonumber(ARGV[4])
local K_DEF, K_NEXT, K_RUNS, K_PAUSED = KEYS[b], KEYS[b + 1], KEYS[b + 2], KEYS[b + 3]
if redis.call('HEXISTS', K_DEF, id) == 0 then return -1 end
local paused = redis.call('HEXISTS', K_PAUSED, id) == 1
if pause == '1' then
  if paused then return 0 end
  redis.call('HSET', K_PAUSED, id, '1')
  redis.call('ZREM', K_NEXT, id)
  return 1
end
if not paused then return 0 end
redis.call('HDEL', K_PAUSED, id)
if next_ms >= 0 then redis.call('ZADD', K_NEXT, next_ms, id) end
return 1
