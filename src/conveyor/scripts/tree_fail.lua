-- tree_fail: end a flow child for good (active -> dead | cancelled) and apply its failure
-- policy to its parent in the same step: fail (the parent goes to dead, and so on up the
-- tree under the parent's own policy), ignore or continue (the parent runs once its other
-- children are done; with continue it sees this child's error).
-- KEYS: the child's queue layout, then the queue blocks (conveyor.flows.keys.TREE_BLOCK)
--   and flow hashes of its ancestors (see _tree.lua).
-- ARGV: 1 events maxlen, 2 keep count for dead/cancelled (-1 = unbounded), 3 keep age ms,
--       4 id, 5 fencing token, 6 error JSON, 7 attempt record JSON, 8 outcome: dead |
--       cancelled, 9 count the attempt (1) or not (0), 10 short reason,
--       11 the child's ref "<queue>:<id>", then from 12 its ancestors (see tree_ancestors in
--       _tree.lua)
-- Returns: {code, parent}: code 1 done, 0 lease lost (nothing written); parent 0 the
--   outcome was recorded, 1 the parent became runnable, 2 the parent failed.
local maxlen, keep_count, keep_age = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local id, token, outcome = ARGV[4], ARGV[5], ARGV[8]
if not holds_lease(id, token) then return {0, 0} end
local now = now_ms()
if ARGV[9] == '1' then redis.call('HINCRBY', F.attempts, id, 1) end
redis.call('HSET', F.error, id, ARGV[6])
append_history(id, ARGV[7])
local zset = K_DEAD
if outcome == 'cancelled' then zset = K_CANCELLED else outcome = 'dead' end
bury(zset, outcome, id, now, maxlen, ARGV[10])
trim(zset, keep_count, keep_age, now)
local ancestors = tree_ancestors(12)
return {1, tree_notify(ancestors, ARGV[11], outcome, ARGV[6], now, maxlen)}
