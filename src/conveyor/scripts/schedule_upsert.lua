-- schedule_upsert: create or replace a schedule's definition (declaring it twice is a no-op).
-- KEYS: the queue layout (see _prelude.lua), then from ARGV[1] on: definitions (hash: id ->
--   JSON), next fire times (zset: id -> ms), runs (hash: id -> jobs enqueued),
--   paused (hash: id -> '1'), last fire (hash: id -> ms).
-- ARGV: 1 KEYS index of the definitions hash, 2 schedule id, 3 definition JSON (canonical),
--       4 next fire ms computed from now (-1 = none: the schedule is already over)
-- Returns: 1 created, 2 updated (next fire time recomputed; runs kept),
--   0 unchanged (the same definition: its next fire time and runs are left alone).
local b, id, def, next_ms = tonumber(ARGV[1]), ARGV[2], ARGV[3], tonumber(ARGV[4])
local K_DEF, K_NEXT, K_PAUSED = KEYS[b], KEYS[b + 1], KEYS[b + 3]
local old = redis.call('HGET', K_DEF, id)
if old == def then return 0 end
redis.call('HSET', K_DEF, id, def)
if redis.call('HEXISTS', K_PAUSED, id) == 0 then
  if next_ms >= 0 then
    redis.call('ZADD', K_NEXT, next_ms, id)
  else
    redis.call('ZREM', K_NEXT, id)
  end
end
if old then return 2 end
return 1
