--[[
  Rebase: PostgreSQL holds a version of the attempt that Redis handed out again (Redis came back
  from an older state). Moves the Redis copy above PostgreSQL's version, keeping it dirty.
  Input:
    KEYS[1] session:{id}
    KEYS[2] sessions:dirty
    ARGV[1] the version the Redis copy must still be at
    ARGV[2] the version to move it to
    ARGV[3] now (epoch ms)
  Output:
    {'OK', 0, render()}  moved
    {'MOVED'}            the copy changed meanwhile (or is gone): nothing done
]]
--- @include "fields"
--- @include "layout"
--- @include "render"
upgrade_layout(KEYS[1])
local m = read_fields(KEYS[1], {'id', 'version', 'dirty_since'})
if not m.version or tonumber(m.version) ~= tonumber(ARGV[1]) then return {'MOVED'} end
redis.call('HSET', KEYS[1], 'version', ARGV[2])
if m.dirty_since == '' then
  redis.call('HSET', KEYS[1], 'dirty_since', ARGV[3])
  redis.call('ZADD', KEYS[2], ARGV[3], m.id)
end
return {'OK', 0, (render())}
