-- tree_complete: finish a job that is a flow child (active -> completed) and tell its
-- parent in the same step; a parent whose children are all done becomes runnable
-- (waiting-children -> waiting).
-- KEYS: the child's queue layout, then from ARGV[8] on, per ancestor (nearest first): its
--   queue block (conveyor.flows.keys.TREE_BLOCK) and its flow hash (see _tree.lua).
-- ARGV: 1 events maxlen, 2 keep count (-1 = unbounded), 3 keep age ms (-1 = unbounded),
--       4 id, 5 fencing token, 6 result JSON, 7 the child's ref "<queue>:<id>",
--       8 KEYS index of the first ancestor block, 9 ancestor count n, then 3 per ancestor:
--       queue, id, failure policy of the node below it
-- Returns: {code, parent}: code 1 completed, 0 lease lost (nothing written); parent 0 the
--   outcome was recorded, 1 the parent became runnable.
local maxlen, keep_count, keep_age = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local id, token, result = ARGV[4], ARGV[5], ARGV[6]
if not holds_lease(id, token) then return {0, 0} end
local now = now_ms()
flow.leave_active(id)
redis.call('HSET', F.state, id, 'completed')
redis.call('HSET', F.result, id, result)
redis.call('HSET', F.finished, id, int(now))
redis.call('HDEL', F.cancel, id)
redis.call('ZADD', K_COMPLETED, int(now), id)
emit(maxlen, id, 'completed')
trim(K_COMPLETED, keep_count, keep_age, now)
return {1, tree_notify(9, tonumber(ARGV[8]), ARGV[7], 'completed', result, now, maxlen)}
