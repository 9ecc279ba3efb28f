--[[
  Cache an attempt from PostgreSQL (or a new one): writes the whole hash unless the cached copy is
  as new or newer, so a fill never overwrites a newer version.
  Input:
    KEYS[1]   session:{id}
    KEYS[2]   session:{id}:events
    ARGV[1]   cache TTL (seconds)
    ARGV[2]   the attempt's version
    ARGV[3]   '1' to publish the attempt as a change (a new attempt), else ''
    ARGV[4..] field/value pairs (sessionCodec.ts encodeAttempt, event_seq included)
  Output:
    1 written, 0 kept
]]
--- @include "fields"
--- @include "render"
--- @include "channels"
local cur = redis.call('HMGET', KEYS[1], 'version', 'event_seq')
if cur[1] and tonumber(cur[1]) >= tonumber(ARGV[2]) then return 0 end
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('DEL', KEYS[1]) end
redis.call('HSET', KEYS[1], unpack(ARGV, 4))
-- events numbered in Redis and not yet in PostgreSQL keep their numbers: the counter never goes back
local seq = tonumber(redis.call('HGET', KEYS[1], 'event_seq')) or 0
local kept = math.max(cur[2] and tonumber(cur[2]) or 0, tonumber(string.match(redis.call('LINDEX', KEYS[2], -1) or '', '^{"seq":(%d+)') or 0))
if kept > seq then redis.call('HSET', KEYS[1], 'event_seq', kept) end
redis.call('EXPIRE', KEYS[1], ARGV[1])
if ARGV[3] == '1' then
  local out, meta = render()
  publish_change(out, meta)
end
return 1
