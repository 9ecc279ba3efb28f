--[[
  Control: a proctor's (or a service's) live change to an attempt (control.ts): extend, pause or
  resume. The deadline is settled first, so a control acts on the attempt as it is now.
  Input:
    KEYS[1], KEYS[2], ARGV[1..4]  as in includes/write.lua
    ARGV[5]  'extend' | 'pause' | 'resume'
    ARGV[6]  extend: the seconds to add
    ARGV[7]  extend: 'deadline' or 'now', where they count from
    ARGV[8]  extend: '1' to reopen an expired attempt, else ''
  Output:
    {'MISS'} | {'FORBIDDEN'}  as in includes/write.lua
    {code, first, render(), moved}  code:
      OK         applied (version + 1)
      UNCHANGED  pause of a paused attempt, or resume of one that is not paused
      UNTIMED    extend of an untimed attempt
      COMPLETED  the attempt is completed
      OVERDUE    pause of an overdue attempt (its time is up)
      CLOSED     expired (extend without reopen, pause, resume) or abandoned
      PAST       the extended deadline would still be past: nothing done
]]
--- @include "rules"
--- @include "fields"
--- @include "render"
--- @include "write"
local action = ARGV[5]
settle_deadline()
if m.status == 'completed' then return reply('COMPLETED') end

if action == 'pause' then
  if m.status == PAUSED_STATUS then return reply('UNCHANGED') end
  if m.status == OVERDUE_STATUS then return reply('OVERDUE') end
  if not is_running(m.status) then return reply('CLOSED') end
  return apply({'status', PAUSED_STATUS, 'paused_at', ARGV[1], 'paused_from', m.status}, 'OK')
end

if action == 'resume' then
  if m.status ~= PAUSED_STATUS then return reply(is_open(m.status) and 'UNCHANGED' or 'CLOSED') end
  local back = m.paused_from
  if back == '' then back = PROGRESS_STATUS end
  local f = {'status', back, 'paused_at', '', 'paused_from', '', 'last_updated', ARGV[1]}
  if m.expires_at ~= '' then
    f[#f + 1] = 'expires_at'
    f[#f + 1] = string.format('%d', resumed_deadline(tonumber(m.expires_at), tonumber(m.paused_at), now))
  end
  return apply(f, 'OK')
end

-- extend
if m.expires_at == '' then return reply('UNTIMED') end
local reopen = ARGV[8] == '1'
if m.status == 'abandoned' or (m.status == 'expired' and not reopen) then return reply('CLOSED') end
local before = tonumber(m.expires_at)
local deadline = extended_deadline(before, tonumber(ARGV[6]), ARGV[7], now, m.paused_at)
local extra = tonumber(m.extra_time_seconds) or 0
local f = {'expires_at', string.format('%d', deadline), 'extra_time_seconds', string.format('%d', extra + granted_seconds(before, deadline))}
if not is_running(m.status) and m.status ~= PAUSED_STATUS then
  -- expired (reopened) or overdue: back in progress, when the new deadline is ahead
  if deadline <= now then return reply('PAST') end
  f[#f + 1] = 'status'
  f[#f + 1] = PROGRESS_STATUS
  f[#f + 1] = 'ended_at'
  f[#f + 1] = ''
  f[#f + 1] = 'last_updated'
  f[#f + 1] = ARGV[1]
end
return apply(f, 'OK')
