--[[
  The opening of every write script.
  Input:
    KEYS[1] session:{id}
    KEYS[2] sessions:dirty (zset: id -> dirty since, ms)
    KEYS[3] session:{id}:events (list of the events not yet in PostgreSQL, JSON, in seq order)
    ARGV[1] now (epoch ms)
    ARGV[2] cache TTL (seconds)
    ARGV[3] the version the caller expects, or '' for any
    ARGV[4] the user the caller acts for, or '' for any
    ARGV[5] the event context: the JSON fragment `"actor":{...},"request_id":...` (events.ts)
  Returns early:
    {'MISS'}       the attempt is not cached, or cached in another layout (the caller fills it
                   from PostgreSQL, which replaces the hash, and runs again)
    {'FORBIDDEN'}  another user's attempt: nothing about it is revealed
  Defines m (the fields below, by name), v (the version as a number), and:
    settle_deadline()    applies what the deadline does at now (deadline.ts: expired, completed by
                         the timer, abandoned, overdue), whoever looks: m shows the result, and it
                         is written with the script's reply; true when it moved the attempt
    add_event(type, data) queues an event (data: JSON text) for the reply to append
    apply(fields, code)  writes the fields (with the deadline's change and version + 1) and the
                         queued events, marks the attempt dirty if it was clean, refreshes the TTL,
                         and publishes the attempt after it (channels.ts)
    reply(code)          answers without a change of its own (still writing the deadline's change
                         and the queued events, if any)
    reject(code, http_status, error_code)  records the refused write (write_rejected), then reply
  Every reply is {code, first, rendered(), moved} (rendered(): the attempt after the write, as render() in includes/render.lua would read it back): first = 1 when the attempt became dirty, moved = 1
  when the deadline moved it.
  Needs the "rules", "fields" and "channels" includes.
]]
--- @include "layout"
--- @include "render"
local key = KEYS[1]
local now = tonumber(ARGV[1])
local m = read_fields(key, OPENING_FIELDS)
if not m.version then return {'MISS'} end
-- cached in the earlier layout: converted first (once)
if not m[ANSWER_INDEX_FIELD] and upgrade_layout(key) then m = read_fields(key, OPENING_FIELDS) end
if ARGV[4] ~= '' and m.user_id ~= ARGV[4] then return {'FORBIDDEN'} end
local v = tonumber(m.version)
for i = 1, #LATE_FIELDS do
  if not m[LATE_FIELDS[i]] then m[LATE_FIELDS[i]] = '' end
end

local due = {}
local moved = 0
local events = {}
-- set by a script that keeps its reply for an idempotency key: remember(code, out, encoded), where
-- encoded is cjson.encode(out) when it was made already (published), else nil
local remember = nil

local function add_event(type, data)
  events[#events + 1] = {type, data}
end

-- appends the queued events (seq from the hash's event_seq) and adds the new event_seq to fields
local function flush_events(fields)
  if #events == 0 then return end
  local seq = tonumber(m.event_seq) or 0
  for i = 1, #events do
    seq = seq + 1
    redis.call('RPUSH', KEYS[3], '{"seq":' .. seq .. ',"type":"' .. events[i][1] .. '","at":' .. ARGV[1] .. ',' .. ARGV[5] .. ',"data":' .. events[i][2] .. '}')
  end
  redis.call('EXPIRE', KEYS[3], ARGV[2])
  fields[#fields + 1] = 'event_seq'
  fields[#fields + 1] = seq
end

local function settle_deadline()
  local status, ended_at, submitted = due_change(m.status, m.expires_at, m.overdue_handling, m.grace_period_seconds, now)
  if not status then return false end
  due = {'status', status, 'ended_at', ended_at, 'last_updated', ARGV[1]}
  if submitted then
    due[#due + 1] = 'completed_at'
    due[#due + 1] = ended_at
    due[#due + 1] = 'submitted_by'
    due[#due + 1] = 'timer'
  end
  m.status = status
  m.ended_at = ended_at
  moved = 1
  add_event(EVENT_OF_STATUS[status], '{"by":"deadline","version":' .. next_version(v) .. (submitted and ',"submitted_by":"timer"' or '') .. '}')
  return true
end

local function mark_dirty(fields)
  if m.dirty_since ~= '' then return 0 end
  fields[#fields + 1] = 'dirty_since'
  fields[#fields + 1] = ARGV[1]
  redis.call('ZADD', KEYS[2], now, m.id)
  return 1
end

-- the attempt as render() would read it back after `changes` (flat field, value pairs) were
-- written: laid over m (so m shows the attempt after the write), numbers as Redis stores them
local function rendered(changes)
  for i = 1, #changes, 2 do
    local value = changes[i + 1]
    m[changes[i]] = type(value) == 'number' and tostring(value) or value
  end
  return render_row(m), m
end

local function apply(fields, code)
  local all = {}
  for i = 1, #due do all[#all + 1] = due[i] end
  for i = 1, #fields do all[#all + 1] = fields[i] end
  all[#all + 1] = 'version'
  all[#all + 1] = next_version(v)
  flush_events(all)
  local first = mark_dirty(all)
  redis.call('HSET', key, unpack(all))
  redis.call('EXPIRE', key, ARGV[2])
  local out, meta = rendered(all)
  local encoded = publish_change(out, meta)
  if remember then remember(code, out, encoded) end
  return {code, first, out, moved}
end

local function reply(code)
  if moved == 1 then return apply({}, code) end
  if #events == 0 then
    local out = rendered({})
    if remember then remember(code, out) end
    return {code, 0, out, 0}
  end
  -- only events (a refused write, a note): recorded, the attempt itself unchanged (nor its TTL:
  -- this is no activity; dirty, it is kept alive by the sweep until PostgreSQL has the events)
  local f = {}
  flush_events(f)
  local first = mark_dirty(f)
  redis.call('HSET', key, unpack(f))
  local out = rendered(f)
  if remember then remember(code, out) end
  return {code, first, out, 0}
end

local function reject(code, http_status, error_code)
  add_event('write_rejected', '{"status":' .. http_status .. ',"error_code":"' .. error_code .. '","version":' ..
    (ARGV[3] == '' and 'null' or ARGV[3]) .. ',"attempt_status":"' .. m.status .. '"}')
  return reply(code)
end
