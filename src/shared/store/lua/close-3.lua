--[[
  Close: the student completes or abandons an open attempt, or a worker applies the deadline or
  abandons an idle attempt.
  Input:
    KEYS[1..3], ARGV[1..5]  as in includes/write.lua
    ARGV[6]  the target status: completed or abandoned ('' with the 'deadline' guard)
    ARGV[7]  the guard: '' (the student asks), 'deadline' (only what the deadline does now:
             deadline.ts) or 'idle' (only when the attempt is idle: no activity for ARGV[8] ms)
    ARGV[8]  the idle time (ms), with the 'idle' guard
  Events: what the deadline did; completed or abandoned (by the student, or idle); a refused
  student close is write_rejected.
  Output:
    {'MISS'} | {'FORBIDDEN'}  as in includes/write.lua
    {code, first, rendered(), moved}  code:
      OK        done now (version + 1; completed: submitted_by student; 'deadline': moved)
      ALREADY   already in the target status
      EXPIRED   the deadline closed it instead, just now (moved)
      PAUSED    a proctor paused it: the student may not close it now
      CLOSED    closed before ('deadline': overdue or closed before)
      NOOP      the guard does not hold
      CONFLICT  the expected version is not the current one
]]
--- @include "rules"
--- @include "fields"
--- @include "channels"
--- @include "write"
local target = ARGV[6]
local guard = ARGV[7]
settle_deadline()
if guard == 'deadline' then
  if moved == 1 then return reply('OK') end
  -- overdue or closed: the deadline (or something else) moved it before
  if is_running(m.status) or m.status == PAUSED_STATUS then return reply('NOOP') end
  return reply('CLOSED')
end
if m.status == target then return reply('ALREADY') end
local function refuse(code, http_status, error_code)
  if guard == '' then return reject(code, http_status, error_code) end
  return reply(code)
end
if not is_open(m.status) then
  local gone = m.status == 'completed' and {409, 'SESSION_COMPLETED'} or {410, 'SESSION_EXPIRED'}
  return refuse(moved == 1 and 'EXPIRED' or 'CLOSED', gone[1], gone[2])
end
if m.status == PAUSED_STATUS then
  if guard == '' then return reject('PAUSED', 423, 'SESSION_PAUSED') end
  return reply('NOOP')
end
if guard == 'idle' and not is_idle(m.status, m.last_updated, now, tonumber(ARGV[8])) then return reply('NOOP') end
if not version_matches(ARGV[3], v) then return refuse('CONFLICT', 409, 'SESSION_CONFLICT') end
local f = {'status', target, 'ended_at', ARGV[1], 'last_updated', ARGV[1]}
if target == 'completed' then
  f[#f + 1] = 'completed_at'
  f[#f + 1] = ARGV[1]
  f[#f + 1] = 'submitted_by'
  f[#f + 1] = 'student'
end
add_event(target, '{"by":"' .. (guard == 'idle' and 'idle' or 'student') .. '","version":' .. next_version(v) ..
  (target == 'completed' and ',"submitted_by":"student"' or '') .. '}')
return apply(f, 'OK')
