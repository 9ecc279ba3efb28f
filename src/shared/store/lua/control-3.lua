--[[
  Control: a proctor's (or a service's) live change to an attempt (control.ts): extend, pause or
  resume. The deadline is settled first, so a control acts on the attempt as it is now.
  Input:
    KEYS[1..3], ARGV[1..5]  as in includes/write.lua
    ARGV[6]  'extend' | 'pause' | 'resume'
    ARGV[7]  extend: the seconds to add
    ARGV[8]  extend: 'deadline' or 'now', where they count from
    ARGV[9]  extend: '1' to reopen an expired attempt, else ''
    ARGV[10] the reason, as JSON text (a string, or null)
  Events: extended, reopened, paused, resumed_by_proctor (with the reason); a refusal is
  write_rejected.
  Output:
    {'MISS'} | {'FORBIDDEN'}  as in includes/write.lua
    {code, first, rendered(), moved}  code:
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
--- @include "channels"
--- @include "write"
local action = ARGV[6]
local reason = ARGV[10]
settle_deadline()
if m.status == 'completed' then return reject('COMPLETED', 409, 'SESSION_COMPLETED') end

if action == 'pause' then
  if m.status == PAUSED_STATUS then return reply('UNCHANGED') end
  if m.status == OVERDUE_STATUS then return reject('OVERDUE', 410, 'SESSION_EXPIRED') end
  if not is_running(m.status) then return reject('CLOSED', 410, 'SESSION_EXPIRED') end
  add_event('paused', '{"reason":' .. reason .. ',"version":' .. next_version(v) .. '}')
  return apply({'status', PAUSED_STATUS, 'paused_at', ARGV[1], 'paused_from', m.status}, 'OK')
end

if action == 'resume' then
  if m.status ~= PAUSED_STATUS then
    if is_open(m.status) then return reply('UNCHANGED') end
    return reject('CLOSED', 410, 'SESSION_EXPIRED')
  end
  local back = m.paused_from
  if back == '' then back = PROGRESS_STATUS end
  local f = {'status', back, 'paused_at', '', 'paused_from', '', 'last_updated', ARGV[1]}
  if m.expires_at ~= '' then
    f[#f + 1] = 'expires_at'
    f[#f + 1] = string.format('%d', resumed_deadline(tonumber(m.expires_at), tonumber(m.paused_at), now))
  end
  add_event('resumed_by_proctor', '{"reason":' .. reason .. ',"version":' .. next_version(v) .. '}')
  return apply(f, 'OK')
end

-- extend
if m.expires_at == '' then return reject('UNTIMED', 400, 'VALIDATION_ERROR') end
local reopen = ARGV[9] == '1'
if m.status == 'abandoned' or (m.status == 'expired' and not reopen) then return reject('CLOSED', 410, 'SESSION_EXPIRED') end
local before = tonumber(m.expires_at)
local deadline = extended_deadline(before, tonumber(ARGV[7]), ARGV[8], now, m.paused_at)
local extra = tonumber(m.extra_time_seconds) or 0
local f = {'expires_at', string.format('%d', deadline), 'extra_time_seconds', string.format('%d', extra + granted_seconds(before, deadline))}
local event = 'extended'
if not is_running(m.status) and m.status ~= PAUSED_STATUS then
  -- expired (reopened) or overdue: back in progress, when the new deadline is ahead
  if deadline <= now then return reject('PAST', 400, 'VALIDATION_ERROR') end
  if m.status == 'expired' then event = 'reopened' end
  f[#f + 1] = 'status'
  f[#f + 1] = PROGRESS_STATUS
  f[#f + 1] = 'ended_at'
  f[#f + 1] = ''
  f[#f + 1] = 'last_updated'
  f[#f + 1] = ARGV[1]
end
add_event(event, '{"seconds":' .. ARGV[7] .. ',"from":"' .. ARGV[8] .. '","expires_at":' .. string.format('%d', deadline) ..
  ',"granted_seconds":' .. granted_seconds(before, deadline) .. ',"reason":' .. reason .. ',"version":' .. next_version(v) .. '}')
return apply(f, 'OK')
