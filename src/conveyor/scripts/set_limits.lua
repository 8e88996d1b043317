-- set_limits: replace a queue's flow-control limits: queue-wide, and the defaults of every
-- group (per-group overrides, set with set_key_limits, stay).
-- ARGV: 1 events maxlen, 2 rate "N:period ms" ('' = none), 3 concurrency ('' = none),
--       4 per-group rate "N:period ms" ('' = none), 5 per-group concurrency ('' = none)
-- Returns: the number of limits now set (0-4). Groups held back at their concurrency limit
--   rejoin the rotation, where the new limits decide, and an idle worker is woken.
local set = 0
for i, field in ipairs({'rate', 'conc', 'krate', 'kconc'}) do
  local value = ARGV[i + 1]
  if value == '' then
    redis.call('HDEL', FC.config, field)
  else
    redis.call('HSET', FC.config, field, value)
    set = set + 1
  end
end
for _, lane in ipairs(redis.call('SMEMBERS', FC.full)) do
  ready(lane)
end
redis.call('DEL', FC.full)
flow.forget_slots_if_unlimited()
emit(ARGV[1], '', 'limits', {'rate', ARGV[2], 'concurrency', ARGV[3],
  'key_rate', ARGV[4], 'key_concurrency', ARGV[5]})
wake_worker()
return set
