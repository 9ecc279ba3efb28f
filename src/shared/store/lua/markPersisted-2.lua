--[[
  After a snapshot reached PostgreSQL: the attempt is clean when that is still its version; when a
  newer write landed meanwhile, it stays dirty with a new window.
  Input:
    KEYS[1] session:{id}
    KEYS[2] sessions:dirty
    ARGV[1] the version PostgreSQL now holds, or '' when nothing was written (the key was gone)
    ARGV[2] now (epoch ms): when the new window opens
    ARGV[3] the attempt id
  Output:
    'CLEAN'  PostgreSQL is current: dirty_since cleared, out of the dirty set
    'DIRTY'  a newer write landed: dirty since ARGV[2]
    'GONE'   the key vanished: out of the dirty set
]]
local m = redis.call('HMGET', KEYS[1], 'version', 'dirty_since')
local version, dirty_since = m[1], m[2]
if not version then
  redis.call('ZREM', KEYS[2], ARGV[3])
  return 'GONE'
end
-- a key that is back although nothing was written holds changes PostgreSQL lacks: DIRTY
if ARGV[1] ~= '' and tonumber(version) <= tonumber(ARGV[1]) then
  if dirty_since ~= '' then redis.call('HSET', KEYS[1], 'dirty_since', '') end
  redis.call('ZREM', KEYS[2], ARGV[3])
  return 'CLEAN'
end
redis.call('HSET', KEYS[1], 'dirty_since', ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
return 'DIRTY'
