--[[
  After a snapshot (and the attempt's pending events) reached PostgreSQL: the events PostgreSQL now
  holds leave the pending list; the attempt is clean when its version is PostgreSQL's and no event
  is pending; when a newer write (or event) landed meanwhile, it stays dirty with a new window.
  Input:
    KEYS[1] session:{id}
    KEYS[2] sessions:dirty
    KEYS[3] session:{id}:events
    ARGV[1] the version PostgreSQL now holds, or '' when nothing was written (the key was gone)
    ARGV[2] now (epoch ms): when the new window opens
    ARGV[3] the attempt id
    ARGV[4] the last event seq PostgreSQL now holds, or '' when no event was written
  Output:
    'CLEAN'  PostgreSQL is current: dirty_since cleared, out of the dirty set
    'DIRTY'  a newer write or event landed: dirty since ARGV[2]
    'GONE'   the key vanished: out of the dirty set
]]
if ARGV[4] ~= '' then
  local through = tonumber(ARGV[4])
  for _ = 1, redis.call('LLEN', KEYS[3]) do
    local head = redis.call('LINDEX', KEYS[3], 0)
    local seq = tonumber(string.match(head, '^{"seq":(%d+)'))
    if not seq or seq > through then break end
    redis.call('LPOP', KEYS[3])
  end
end
local m = redis.call('HMGET', KEYS[1], 'version', 'dirty_since')
local version, dirty_since = m[1], m[2]
if not version then
  redis.call('ZREM', KEYS[2], ARGV[3])
  return 'GONE'
end
-- a key that is back although nothing was written holds changes PostgreSQL lacks: DIRTY
if ARGV[1] ~= '' and tonumber(version) <= tonumber(ARGV[1]) and redis.call('LLEN', KEYS[3]) == 0 then
  if dirty_since ~= '' then redis.call('HSET', KEYS[1], 'dirty_since', '') end
  redis.call('ZREM', KEYS[2], ARGV[3])
  return 'CLEAN'
end
redis.call('HSET', KEYS[1], 'dirty_since', ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
return 'DIRTY'
