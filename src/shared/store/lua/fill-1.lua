--[[
  Cache an attempt from PostgreSQL (or a new one): writes the whole hash unless the cached copy is
  as new or newer, so a fill never overwrites a newer version.
  Input:
    KEYS[1]   session:{id}
    ARGV[1]   cache TTL (seconds)
    ARGV[2]   the attempt's version
    ARGV[3..] field/value pairs (sessionCodec.ts encodeAttempt)
  Output:
    1 written, 0 kept
]]
local cur = redis.call('HGET', KEYS[1], 'version')
if cur and tonumber(cur) >= tonumber(ARGV[2]) then return 0 end
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('DEL', KEYS[1]) end
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 1
