-- tree_cancel: cancel a flow parent that waits for its children (waiting-children ->
-- cancelled) and tell its own parent, as a child that ended cancelled. Its children are left
-- alone: their outcomes are still recorded when they end.
-- KEYS: the parent's queue layout, its waiting-children zset at ARGV[6], then the queue
--   blocks (conveyor.flows.keys.TREE_BLOCK) and flow hashes of its ancestors (_tree.lua).
-- ARGV: 1 events maxlen, 2 keep count for cancelled (-1 = unbounded), 3 keep age ms (-1),
--       4 id, 5 reason, 6 KEYS index of the waiting-children zset, 7 the job's ref
--       "<queue>:<id>", then from 8 its ancestors (see tree_ancestors in _tree.lua)
-- Returns: {code, parent}: code 1 cancelled, -1 it does not wait for children (nothing
--   written); parent as in tree_notify (0 when it has no parent).
local maxlen, keep_count, keep_age = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local id, reason = ARGV[4], ARGV[5]
if redis.call('HGET', F.state, id) ~= 'waiting-children' then return {-1, 0} end
local now = now_ms()
redis.call('ZREM', KEYS[tonumber(ARGV[6])], id)
local error = cjson.encode({type = 'JobCancelled', message = reason})
redis.call('HSET', F.error, id, error)
bury(K_CANCELLED, 'cancelled', id, now, maxlen, reason)
trim(K_CANCELLED, keep_count, keep_age, now)
return {1, tree_notify(tree_ancestors(8), ARGV[7], 'cancelled', error, now, maxlen)}
