-- extend: renew the leases a worker holds (active stays active, expiry pushed back).
-- ARGV: 1 lease ms, then 2 per job: id, fencing token
-- Returns: one integer per job: 1 renewed, 2 renewed and an operator asked to cancel it,
--   0 lease lost (the worker must abandon the job; its result would be rejected).
local expiry = int(now_ms() + tonumber(ARGV[1]))
local codes = {}
for i = 2, #ARGV, 2 do
  local id, token = ARGV[i], ARGV[i + 1]
  if holds_lease(id, token) then
    redis.call('ZADD', K_ACTIVE, 'XX', expiry, id)
    codes[#codes + 1] = (redis.call('HEXISTS', F.cancel, id) == 1) and 2 or 1
  else
    codes[#codes + 1] = 0
  end
end
return codes
