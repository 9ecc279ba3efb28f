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
    apply(fields, code)  writes the fields, marks the attempt dirty if it was clean, refreshes the
                         TTL; returns {code, first, render()}, first = 1 when it became dirty
    reply(code)          {code, 0, render()} without writing
    expire_if_due()      an open attempt past its deadline becomes expired at its deadline, right
                         here (whoever looks): the EXPIRED reply, or nil
  Needs the "rules", "fields" and "render" includes.
]]
local key = KEYS[1]
local now = tonumber(ARGV[1])
local m = read_fields(key, {'id', 'user_id', 'status', 'version', 'expires_at', 'last_updated', 'dirty_since'})
if not m.version then return {'MISS'} end
if ARGV[4] ~= '' and m.user_id ~= ARGV[4] then return {'FORBIDDEN'} end
local v = tonumber(m.version)

local function mark_dirty(fields)
  if m.dirty_since ~= '' then return 0 end
  fields[#fields + 1] = 'dirty_since'
  fields[#fields + 1] = ARGV[1]
  redis.call('ZADD', KEYS[2], now, m.id)
  return 1
end

local function apply(fields, code)
  local first = mark_dirty(fields)
  redis.call('HSET', key, unpack(fields))
  redis.call('EXPIRE', key, ARGV[2])
  return {code, first, (render())}
end

local function reply(code)
  return {code, 0, (render())}
end

local function expire_if_due()
  if not past_deadline(m.status, m.expires_at, now) then return nil end
  return apply({'status', 'expired', 'ended_at', m.expires_at, 'version', next_version(v), 'last_updated', ARGV[1]}, 'EXPIRED')
end
