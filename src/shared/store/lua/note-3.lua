--[[
  Note: appends events that change nothing else (started, resumed, and a client's events), marking
  the attempt dirty so the write-behind takes them to PostgreSQL.
  Input:
    KEYS[1..3], ARGV[1..5]  as in includes/write.lua
    ARGV[6..] event type / data (JSON text) pairs
  Output:
    {'MISS'} | {'FORBIDDEN'}  as in includes/write.lua
    {'OK', first, rendered(), 0}
]]
--- @include "rules"
--- @include "fields"
--- @include "channels"
--- @include "write"
for i = 6, #ARGV, 2 do add_event(ARGV[i], ARGV[i + 1]) end
return reply('OK')
