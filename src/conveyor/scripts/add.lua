-- add: enqueue one or more jobs (new -> waiting | delayed).
-- ARGV: 1 events maxlen, then 4 per job: id, spec JSON, priority, delay ms
-- Returns: one integer per job: 1 added, 0 an existing job has that id (nothing changed).
local maxlen = ARGV[1]
local now = now_ms()
local results = {}

local function add_delayed(id, delay)
  local due = int(now + delay)
  redis.call('HSET', F.state, id, 'delayed')
  redis.call('HSET', F.ready, id, due)
  redis.call('ZADD', K_DELAYED, due, id)
  emit(maxlen, id, 'delayed', {'due', due})
end

-- Plain jobs (no delay, group or deadline) of a chunk go in with one call per field.
local function add_plain(ids, priorities)
  if #ids == 0 then return end
  local last = redis.call('INCRBY', K_SEQ, #ids)
  local states, scores = {}, {}
  for i, id in ipairs(ids) do
    states[#states + 1], states[#states + 2] = id, 'waiting'
    local seq = last - #ids + i
    scores[#scores + 1] = int((1000 - tonumber(priorities[i])) * PRIORITY_SPAN + seq)
    scores[#scores + 1] = id
  end
  redis.call('HSET', F.state, unpack(states))
  redis.call('ZADD', K_WAIT, unpack(scores))
  for _, id in ipairs(ids) do emit(maxlen, id, 'waiting') end
end

local function add_chunk(first, last)
  local ids = {}
  for i = first, last do ids[#ids + 1] = ARGV[2 + (i - 1) * 4] end
  local existing = redis.call('HMGET', F.spec, unpack(ids))
  local seen, specs, prios, plain_ids, plain_prios = {}, {}, {}, {}, {}
  for k, id in ipairs(ids) do
    local base = 2 + (first + k - 2) * 4
    local spec, priority, delay = ARGV[base + 1], ARGV[base + 2], tonumber(ARGV[base + 3])
    if existing[k] or seen[id] then
      results[#results + 1] = 0
    else
      seen[id] = true
      results[#results + 1] = 1
      local controlled = flow.admit(id, spec, now)
      if delay > 0 or controlled then
        redis.call('HSET', F.spec, id, spec)
        redis.call('HSET', F.priority, id, priority)
        if delay > 0 then
          add_delayed(id, delay)
        else
          enqueue_waiting(id, false)
          emit(maxlen, id, 'waiting')
        end
      else
        specs[#specs + 1], specs[#specs + 2] = id, spec
        if priority ~= '0' then -- absent reads as 0 everywhere: most jobs store none
          prios[#prios + 1], prios[#prios + 2] = id, priority
        end
        plain_ids[#plain_ids + 1], plain_prios[#plain_prios + 1] = id, priority
      end
    end
  end
  if #specs == 0 then return end
  redis.call('HSET', F.spec, unpack(specs))
  if #prios > 0 then redis.call('HSET', F.priority, unpack(prios)) end
  add_plain(plain_ids, plain_prios)
end

local n = (#ARGV - 1) / 4
for first = 1, n, CHUNK do add_chunk(first, math.min(n, first + CHUNK - 1)) end
if #results > 0 then wake_worker() end
return results
