-- release: give leased jobs back at once, e.g. on shutdown (active -> waiting, at the front).
-- The attempt is not counted: the handler did not get to finish.
-- ARGV: 1 events maxlen, then 2 per job: id, fencing token
-- Returns: one integer per job: 1 released, 0 lease already lost.
local maxlen = ARGV[1]
local codes = {}
for i = 2, #ARGV, 2 do
  local id, token = ARGV[i], ARGV[i + 1]
  if holds_lease(id, token) then
    flow.leave_active(id)
    enqueue_waiting(id, true)
    emit(maxlen, id, 'released')
    codes[#codes + 1] = 1
  else
    codes[#codes + 1] = 0
  end
end
wake_worker()
return codes
