--[[
  The opening of every write script.
  Input:
    KEYS[1] session:{id}
    KEYS[2] sessions:dirty (zset: id -> dirty since, ms)
    ARGV[1] now (epoch ms)
    ARGV[2] cache TTL (seconds)
    ARGV[3] the version the caller expects, or '' for any
    ARGV[4] the user the caller acts for, or '' for any
  Returns early:
    {'MISS'}       the attempt is not cached, or cached in another layout (the caller fills it
                   from PostgreSQL, which replaces the hash, and runs again)
    {'FORBIDDEN'}  another user's attempt: nothing about it is revealed
  Defines m (the fields below, by name), v (the version as a number), and:
    settle_deadline()    applies what the deadline does at now (deadline.ts: expired, completed by
                         the timer, abandoned, overdue), whoever looks: m shows the result, and it
                         is written with the script's reply; true when it moved the attempt
    apply(fields, code)  writes the fields (with the deadline's change and version + 1), marks the
                         attempt dirty if it was clean, refreshes the TTL
    reply(code)          answers without a change of its own (still writing the deadline's, if any)
  Every reply is {code, first, render(), moved}: first = 1 when the attempt became dirty, moved = 1
  when the deadline moved it.
  Needs the "rules", "fields" and "render" includes.
]]
local key = KEYS[1]
local now = tonumber(ARGV[1])
local m = read_fields(key, {
  'id', 'user_id', 'status', 'version', 'expires_at', 'last_updated', 'dirty_since', 'ended_at',
  'overdue_handling', 'grace_period_seconds', 'paused_at', 'paused_from', 'extra_time_seconds',
})
if not m.version then return {'MISS'} end
if ARGV[4] ~= '' and m.user_id ~= ARGV[4] then return {'FORBIDDEN'} end
local v = tonumber(m.version)
-- fields of a hash cached before they existed
for _, f in ipairs({'overdue_handling', 'grace_period_seconds', 'paused_at', 'paused_from', 'ended_at'}) do
  if not m[f] then m[f] = '' end
end

local due = {}
local moved = 0

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
  return true
end

local function mark_dirty(fields)
  if m.dirty_since ~= '' then return 0 end
  fields[#fields + 1] = 'dirty_since'
  fields[#fields + 1] = ARGV[1]
  redis.call('ZADD', KEYS[2], now, m.id)
  return 1
end

local function apply(fields, code)
  local all = {}
  for i = 1, #due do all[#all + 1] = due[i] end
  for i = 1, #fields do all[#all + 1] = fields[i] end
  all[#all + 1] = 'version'
  all[#all + 1] = next_version(v)
  local first = mark_dirty(all)
  redis.call('HSET', key, unpack(all))
  redis.call('EXPIRE', key, ARGV[2])
  return {code, first, (render()), moved}
end

local function reply(code)
  if moved == 1 then return apply({}, code) end
  return {code, 0, (render()), 0}
end
