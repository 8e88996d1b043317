-- remove: delete jobs and all their fields (any state but active).
-- ARGV: 1 events maxlen, then job ids
-- Returns: one integer per id: 1 removed, 0 no such job, -1 active (nothing changed).
local maxlen = ARGV[1]
local codes = {}
for i = 2, #ARGV do
  local id = ARGV[i]
  local state = redis.call('HGET', F.state, id)
  if not state then
    codes[#codes + 1] = 0
  elseif state == 'active' then
    codes[#codes + 1] = -1
  else
    for _, zset in ipairs({K_WAIT, K_DELAYED, K_COMPLETED, K_DEAD, K_CANCELLED}) do
      redis.call('ZREM', zset, id)
    end
    flow.unwait(id)
    forget_job(id)
    emit(maxlen, id, 'removed')
    codes[#codes + 1] = 1
  end
end
return codes
