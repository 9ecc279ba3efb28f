--[[
  Close: complete, abandon or expire an open attempt, under a guard.
  Input:
    KEYS[1], KEYS[2], ARGV[1..4]  as in includes/write.lua
    ARGV[5]  the target status: completed, abandoned or expired
    ARGV[6]  the guard: '' (the student asks), 'deadline' (only once the deadline has passed) or
             'idle' (only when the attempt is idle: no activity for ARGV[7] ms)
    ARGV[7]  the idle time (ms), with the 'idle' guard
  Output:
    {'MISS'} | {'FORBIDDEN'}  as in includes/write.lua
    {code, first, render()}   code:
      OK        closed now (version + 1; completed: submitted_by student)
      ALREADY   already in the target status
      EXPIRED   found past its deadline: expired instead (OK when the target was expired)
      CLOSED    closed otherwise
      NOOP      the guard does not hold
      CONFLICT  the expected version is not the current one
]]
--- @include "rules"
--- @include "fields"
--- @include "render"
--- @include "write"
local target = ARGV[5]
if m.status == target then return reply('ALREADY') end
local expired = expire_if_due()
if expired then
  if target == 'expired' then expired[1] = 'OK' end
  return expired
end
if not is_open(m.status) then return reply('CLOSED') end
if ARGV[6] == 'deadline' then return reply('NOOP') end
if ARGV[6] == 'idle' and not is_idle(m.status, m.last_updated, now, tonumber(ARGV[7])) then return reply('NOOP') end
if not version_matches(ARGV[3], v) then return reply('CONFLICT') end
local f = {'status', target, 'ended_at', ARGV[1], 'version', next_version(v), 'last_updated', ARGV[1]}
if target == 'completed' then
  f[#f + 1] = 'completed_at'
  f[#f + 1] = ARGV[1]
  f[#f + 1] = 'submitted_by'
  f[#f + 1] = 'student'
end
return apply(f, 'OK')
