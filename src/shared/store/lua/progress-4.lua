--[[
  Progress: answers and/or the current question, with the deadline, the status, the expected
  version and the answer limit checked in the same atomic step; the answer_saved event (or the
  write_rejected one) appended with it.
  With an idempotency key, the record of the key is checked first and the outcome kept in it, in
  the same step (idempotencyStore.ts).
  Input:
    KEYS[1..3], ARGV[1..5]  as in includes/write.lua
    KEYS[4]   the idempotency record (session:{id}:idem:<digest>), read only when ARGV[8] is set
    ARGV[6]   the current question, or ''
    ARGV[7]   the most answers an attempt may hold
    ARGV[8]   the record's opening JSON (fingerprint, request id, time), or '' without a key
    ARGV[9..] answer pairs: the question id as JSON text (JSON.stringify), the answer's JSON text;
              merged into ANSWERS_FIELD by ANSWER_INDEX_FIELD (sessionCodec.ts): an answer to a
              question already answered is spliced in in place, a new one is appended; one walk
              of the index, and only the changed pieces of the text and the index are rebuilt
  Output:
    {'MISS'} | {'FORBIDDEN'}  as in includes/write.lua
    {'REPLAY', 0, {}, 0, record}  the key has a record already: nothing applied
    {code, first, rendered(), moved}  code:
      OK         applied (version + 1, status in progress)
      COMPLETED  the attempt is completed (perhaps by the timer, just now: moved)
      PAUSED     a proctor paused it
      CLOSED     expired, abandoned or overdue (perhaps just now: moved)
      CONFLICT   the expected version is not the current one
      TOO_MANY   the attempt would hold more than ARGV[7] answers
]]
--- @include "rules"
--- @include "fields"
--- @include "channels"
--- @include "write"
--- @include "idempotency"
if ARGV[8] ~= '' then
  local held = redis.call('GET', KEYS[4])
  if held then return {'REPLAY', 0, {}, 0, held} end
  remember = function(code, out)
    redis.call('SET', KEYS[4], ARGV[8] .. ',"code":"' .. code .. '","r":' .. cjson.encode(out) .. '}', 'EX', IDEMPOTENCY_TTL_SECONDS)
  end
end
settle_deadline()
if m.status == 'completed' then return reject('COMPLETED', 409, 'SESSION_COMPLETED') end
if m.status == PAUSED_STATUS then return reject('PAUSED', 423, 'SESSION_PAUSED') end
if not is_running(m.status) then return reject('CLOSED', 410, 'SESSION_EXPIRED') end
if not version_matches(ARGV[3], v) then return reject('CONFLICT', 409, 'SESSION_CONFLICT') end
local f = {'last_updated', ARGV[1], 'status', PROGRESS_STATUS}
local saved = {}
if ARGV[6] ~= '' then
  f[#f + 1] = 'current_question'
  f[#f + 1] = ARGV[6]
end
if #ARGV > 8 then
  -- the answers arriving, by key (the last of a repeated key wins), keys in first-seen order
  local incoming, order, lengths = {}, {}, {}
  for i = 9, #ARGV, 2 do
    local k = ARGV[i]
    if not incoming[k] then order[#order + 1] = k end
    incoming[k] = ARGV[i + 1]
    lengths[#k] = true
    saved[#saved + 1] = k .. ':' .. ARGV[i + 1]
  end
  -- one walk of the index: a stored entry whose key arrives gets its value spliced in place (the
  -- unchanged runs of the text and of the index are copied whole, not entry by entry)
  local text = m[ANSWERS_FIELD] or '{}'
  local index = m[ANSWER_INDEX_FIELD]
  local parts, index_parts, found = {}, {}, {}
  local copied, index_copied, count = 1, 1, 0
  local pos, klen = 2, nil
  for at, n in string.gmatch(index, '()(%d+)') do
    if not klen then
      klen = tonumber(n)
    else
      local vlen = tonumber(n)
      count = count + 1
      if lengths[klen] then
        local k = string.sub(text, pos, pos + klen - 1)
        local value = incoming[k]
        if value then
          found[k] = true
          local from = pos + klen + 1
          parts[#parts + 1] = string.sub(text, copied, from - 1)
          parts[#parts + 1] = value
          copied = from + vlen
          index_parts[#index_parts + 1] = string.sub(index, index_copied, at - 1)
          index_parts[#index_parts + 1] = #value
          index_copied = at + #n
        end
      end
      pos = pos + klen + vlen + 2
      klen = nil
    end
  end
  local added = {}
  for _, k in ipairs(order) do
    if not found[k] then added[#added + 1] = k end
  end
  if count + #added > tonumber(ARGV[7]) then return reject('TOO_MANY', 400, 'VALIDATION_ERROR') end
  -- the rest of the text up to its closing brace, then the new entries, appended
  parts[#parts + 1] = string.sub(text, copied, #text - 1)
  index_parts[#index_parts + 1] = string.sub(index, index_copied)
  for i, k in ipairs(added) do
    local value = incoming[k]
    local sep = (count > 0 or i > 1) and ',' or ''
    parts[#parts + 1] = sep .. k .. ':' .. value
    index_parts[#index_parts + 1] = sep .. #k .. ',' .. #value
  end
  parts[#parts + 1] = '}'
  f[#f + 1] = ANSWERS_FIELD
  f[#f + 1] = table.concat(parts)
  f[#f + 1] = ANSWER_INDEX_FIELD
  f[#f + 1] = table.concat(index_parts)
end
add_event('answer_saved', '{"answers":{' .. table.concat(saved, ',') .. '}' ..
  (ARGV[6] ~= '' and (',"current_question":' .. ARGV[6]) or '') .. ',"version":' .. next_version(v) .. '}')
return apply(f, 'OK')
