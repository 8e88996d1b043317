-- set_key_limits: set or remove the limits of one group, overriding the queue's per-group
-- defaults for it.
-- ARGV: 1 events maxlen, 2 group, 3 "N:period ms:concurrency" (0 = that limit is off;
--       '' = remove the override, the defaults apply again)
-- Returns: 1 set, 0 removed, -1 there was no override to remove (nothing changed).
local lane, value = ARGV[2], ARGV[3]
local field = 'k:' .. lane
local code
if value == '' then
  if redis.call('HDEL', FC.config, field) == 0 then return -1 end
  if redis.call('HINCRBY', FC.config, 'overrides', -1) <= 0 then
    redis.call('HDEL', FC.config, 'overrides')
  end
  code = 0
else
  if redis.call('HSET', FC.config, field, value) == 1 then
    redis.call('HINCRBY', FC.config, 'overrides', 1)
  end
  code = 1
end
flow.forget_slots_if_unlimited()
if redis.call('SREM', FC.full, lane) == 1 then
  ready(lane)
end
emit(ARGV[1], '', 'key-limits', {'group', lane, 'limits', value})
wake_worker()
return code
