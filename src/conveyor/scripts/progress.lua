-- progress: record a running job's progress and/or append a log line (active stays active).
-- ARGV: 1 events maxlen, 2 id, 3 fencing token, 4 progress JSON or '', 5 log line or '',
--       6 max log lines kept
-- Returns: 1 written, 0 lease lost (nothing written).
local maxlen, id, token = ARGV[1], ARGV[2], ARGV[3]
if not holds_lease(id, token) then return 0 end
if ARGV[4] ~= '' then
  redis.call('HSET', F.progress, id, ARGV[4])
  emit(maxlen, id, 'progress', {'progress', ARGV[4]})
end
if ARGV[5] ~= '' then
  local current = redis.call('HGET', F.logs, id)
  local lines = current and cjson.decode(current) or {}
  lines[#lines + 1] = ARGV[5]
  while #lines > tonumber(ARGV[6]) do table.remove(lines, 1) end
  redis.call('HSET', F.logs, id, cjson.encode(lines))
end
return 1
