-- tree_complete: finish jobs that are flow children (active -> completed) and tell their
-- parents in the same step; a parent whose children are all done becomes runnable
-- (waiting-children -> waiting).
-- KEYS: the children's queue layout, then the queue blocks (conveyor.flows.keys.TREE_BLOCK)
--   and flow hashes of their ancestors, each once (see _tree.lua).
-- ARGV: 1 events maxlen, 2 keep count (-1 = unbounded), 3 keep age ms (-1 = unbounded),
--       4 number of jobs, then per job: id, fencing token, result JSON, the job's ref
--       "<queue>:<id>", and its ancestors (see tree_ancestors in _tree.lua)
-- Returns: one {code, parent} per job: code 1 completed, 0 lease lost (nothing written for
--   that job); parent 0 the outcome was recorded, 1 the parent became runnable.
local maxlen, keep_count, keep_age = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local now = now_ms()
local replies, at = {}, 5
for _ = 1, tonumber(ARGV[4]) do
  local id, token, result, ref = ARGV[at], ARGV[at + 1], ARGV[at + 2], ARGV[at + 3]
  local ancestors, after = tree_ancestors(at + 4)
  at = after
  if holds_lease(id, token) then
    flow.leave_active(id)
    redis.call('HSET', F.state, id, 'completed')
    redis.call('HSET', F.result, id, result)
    redis.call('HSET', F.finished, id, int(now))
    redis.call('HDEL', F.cancel, id)
    redis.call('ZADD', K_COMPLETED, int(now), id)
    emit(maxlen, id, 'completed')
    replies[#replies + 1] = {1, tree_notify(ancestors, ref, 'completed', result, now, maxlen)}
  else
    replies[#replies + 1] = {0, 0}
  end
end
trim(K_COMPLETED, keep_count, keep_age, now)
return replies
