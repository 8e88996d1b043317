-- tree_settle: tell a flow child's parent how the child ended when the script that ended it
-- could not (the stall check, an operator's cancel); idempotent: an outcome already
-- recorded is left alone.
-- KEYS: the child's queue layout, then the queue blocks (conveyor.flows.keys.TREE_BLOCK)
--   and flow hashes of its ancestors (see _tree.lua).
-- ARGV: 1 events maxlen, 2 id, 3 the child's ref "<queue>:<id>", then from 4 its ancestors
--       (see tree_ancestors in _tree.lua)
-- Returns: -1 the child has not ended (nothing written), else what the parent did:
--   0 recorded (or already recorded), 1 it became runnable, 2 it failed.
local maxlen, id = ARGV[1], ARGV[2]
local state = redis.call('HGET', F.state, id)
if state ~= 'completed' and state ~= 'dead' and state ~= 'cancelled' then return -1 end
local payload
if state == 'completed' then
  payload = redis.call('HGET', F.result, id) or 'null'
else
  payload = redis.call('HGET', F.error, id) or cjson.encode({type = 'Cancelled',
    message = 'ended ' .. state .. ' without an error'})
end
return tree_notify(tree_ancestors(4), ARGV[3], state, payload, now_ms(), maxlen)
