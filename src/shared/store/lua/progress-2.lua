--[[
  Progress: answers and/or the current question, with the deadline, the status, the expected
  version and the answer limit checked in the same atomic step.
  Input:
    KEYS[1], KEYS[2], ARGV[1..4]  as in includes/write.lua
    ARGV[5]   the current question, or ''
    ARGV[6]   the most answers an attempt may hold
    ARGV[7..] answer field/value pairs: 'a:<question id>', the answer's JSON text
  Output:
    {'MISS'} | {'FORBIDDEN'}  as in includes/write.lua
    {code, first, render(), moved}  code:
      OK         applied (version + 1, status in progress)
      COMPLETED  the attempt is completed (perhaps by the timer, just now: moved)
      PAUSED     a proctor paused it
      CLOSED     expired, abandoned or overdue (perhaps just now: moved)
      CONFLICT   the expected version is not the current one
      TOO_MANY   the attempt would hold more than ARGV[6] answers
]]
--- @include "rules"
--- @include "fields"
--- @include "render"
--- @include "write"
settle_deadline()
if m.status == 'completed' then return reply('COMPLETED') end
if m.status == PAUSED_STATUS then return reply('PAUSED') end
if not is_running(m.status) then return reply('CLOSED') end
if not version_matches(ARGV[3], v) then return reply('CONFLICT') end
if #ARGV > 6 then
  local count = redis.call('HLEN', key) - #META_FIELDS
  for i = 7, #ARGV, 2 do
    if redis.call('HEXISTS', key, ARGV[i]) == 0 then count = count + 1 end
  end
  if count > tonumber(ARGV[6]) then return reply('TOO_MANY') end
end
local f = {'last_updated', ARGV[1], 'status', PROGRESS_STATUS}
if ARGV[5] ~= '' then
  f[#f + 1] = 'current_question'
  f[#f + 1] = ARGV[5]
end
for i = 7, #ARGV do f[#f + 1] = ARGV[i] end
return apply(f, 'OK')
