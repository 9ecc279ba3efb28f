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
              question already answered is spliced in in place, a new one is appended; each key
              is found by a plain search, with no walk of the entries, and the text and the index
              are rebuilt once, from their unchanged runs and the changed pieces
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
-- the text position of each entry's key, from the entries' lengths (only when a key's text occurs
-- more than once in the answers: nested in an answer too)
local function entry_starts(index)
  local starts, pos = {}, 2
  for inner, length in string.gmatch(index, INDEX_ENTRY_PATTERN) do
    starts[inner] = pos
    pos = pos + #inner + tonumber(length) + 4
  end
  return starts
end

-- `s` up to byte `upto` as pieces, each edit {at, length, replacement} applied (edits not overlapping)
local function spliced(s, edits, upto)
  if #edits > 1 then table.sort(edits, function(a, b) return a[1] < b[1] end) end
  local parts, copied = {}, 1
  for _, e in ipairs(edits) do
    parts[#parts + 1] = string.sub(s, copied, e[1] - 1)
    parts[#parts + 1] = e[3]
    copied = e[1] + e[2]
  end
  parts[#parts + 1] = string.sub(s, copied, upto)
  return parts
end

if ARGV[8] ~= '' then
  local held = redis.call('GET', KEYS[4])
  if held then return {'REPLAY', 0, {}, 0, held} end
  remember = function(code, out, encoded)
    redis.call('SET', KEYS[4], ARGV[8] .. ',"code":"' .. code .. '","r":' .. (encoded or cjson.encode(out)) .. '}', 'EX', IDEMPOTENCY_TTL_SECONDS)
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
  local incoming, order = {}, {}
  for i = 9, #ARGV, 2 do
    local k = ARGV[i]
    if not incoming[k] then order[#order + 1] = k end
    incoming[k] = ARGV[i + 1]
    saved[#saved + 1] = k .. ':' .. ARGV[i + 1]
  end
  local text = m[ANSWERS_FIELD] or '{}'
  local index = current_index(text, m[ANSWER_INDEX_FIELD])
  local count = select(2, string.gsub(index, INDEX_ENTRY_START, ''))
  -- an answered question's entry: found in the index by its key (one plain search), its value's
  -- length read there; in the text, the one place `<key>:` occurs (or, when an answer holds the
  -- same text nested, its place from the entries' lengths, entry_starts)
  local edits, index_edits, added, starts = {}, {}, {}, nil
  for _, k in ipairs(order) do
    local entry = index_key(k)
    local at = string.find(index, entry, 1, true)
    if at then
      local length_at = at + #entry
      local length = string.match(index, '^%d+', length_at)
      local needle = k .. ':'
      local pos = string.find(text, needle, 2, true)
      if not pos or string.find(text, needle, pos + 1, true) then
        starts = starts or entry_starts(index)
        pos = starts[string.sub(k, 2, -2)]
      end
      local value = incoming[k]
      edits[#edits + 1] = {pos + #needle, tonumber(length), value}
      index_edits[#index_edits + 1] = {length_at, #length, tostring(#value)}
    else
      added[#added + 1] = k
    end
  end
  if count + #added > tonumber(ARGV[7]) then return reject('TOO_MANY', 400, 'VALIDATION_ERROR') end
  -- the text up to its closing brace and the index, the answered values replaced in place, then
  -- the new entries appended
  local parts = spliced(text, edits, #text - 1)
  local index_parts = spliced(index, index_edits, #index)
  for i, k in ipairs(added) do
    local value = incoming[k]
    parts[#parts + 1] = ((count > 0 or i > 1) and ',' or '') .. k .. ':' .. value
    index_parts[#index_parts + 1] = index_entry(k, #value)
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
