-- schedule_remove: delete a schedule and its bookkeeping (jobs it enqueued are kept).
-- KEYS: the queue layout, then from ARGV[1] on: definitions, next fire times, runs, paused,
--   last fire (see schedule_upsert.lua).
-- ARGV: 1 KEYS index of the definitions hash, 2 schedule id
-- Returns: 1 removed, 0 no such schedule.
local b, id = tonumber(ARGV[1]), ARGV[2]
if redis.call('HDEL', KEYS[b], id) == 0 then return 0 end
redis.call('ZREM', KEYS[b + 1], id)
for i = 2, 4 do redis.call('HDEL', KEYS[b + i], id) end
return 1
