-- fetch: promote due delayed jobs, then lease up to N waiting jobs (waiting -> active).
-- ARGV: 1 events maxlen, 2 worker id, 3 lease ms, 4 max jobs
-- Returns: paused (0|1), next delayed due ms (-1 if none), then per job:
--   id, fencing token, failed attempts, stalls, spec JSON.
return activate(ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), now_ms())
