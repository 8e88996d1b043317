-- remove: delete jobs and all their fields (any state but active).
-- ARGV: 1 events maxlen, then job ids
-- Returns: one integer per id: 1 removed, 0 no such job, -1 active, -2 part of an
--   unfinished flow (a child its parent waits for, or a parent waiting for children:
--   cancel it first); nothing changed for codes <= 0.
local maxlen = ARGV[1]
local codes = {}

local FINISHED = {completed = true, dead = true, cancelled = true}
local function has_parent(id)
  local spec = redis.call('HGET', F.spec, id)
  if not spec or not string.find(spec, '"flow":', 1, true) then return false end
  local ok, decoded = pcall(cjson.decode, spec)
  return ok and type(decoded.flow) == 'table' and type(decoded.flow.up) == 'table'
    and #decoded.flow.up > 0
end

for i = 2, #ARGV do
  local id = ARGV[i]
  local state = redis.call('HGET', F.state, id)
  if not state then
    codes[#codes + 1] = 0
  elseif state == 'active' then
    codes[#codes + 1] = -1
  elseif state == 'waiting-children' or (not FINISHED[state] and has_parent(id)) then
    codes[#codes + 1] = -2
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
