--[[
  current_index(text, index): the answer_index of `text` in the current form (sessionCodec.ts),
  from `index` as read. An index of the earlier form (the lengths alone, `k1,v1,k2,v2,...`, before
  2026-12-02) is returned converted (the progress write that needs it writes it with the answers);
  one in the current form is returned as it is.
  Needs the "fields" include.
]]
local function current_index(text, index)
  if index == '' or string.sub(index, 1, 1) == INDEX_ENTRY_START then return index end
  local out, pos, klen = {}, 2, nil
  for n in string.gmatch(index, '%d+') do
    if not klen then
      klen = tonumber(n)
    else
      out[#out + 1] = index_entry(string.sub(text, pos, pos + klen - 1), n)
      pos = pos + klen + tonumber(n) + 2
      klen = nil
    end
  end
  return table.concat(out)
end

--[[
  upgrade_layout(key): a hash cached before the answers were one field (one ANSWER_FIELD_PREFIX
  field per answer) converted in place to ANSWERS_FIELD and ANSWER_INDEX_FIELD (sessionCodec.ts),
  keys written as JSON.stringify writes them (cjson escapes '/' as '\/': undone). Nothing happens to
  a missing key or to a hash in the current layout; true when it converted.
  Needs the "fields" include.
]]
local function upgrade_layout(key)
  local held = redis.call('HMGET', key, 'version', ANSWER_INDEX_FIELD)
  if not held[1] or held[2] then return false end
  local all = redis.call('HGETALL', key)
  local parts, index, old = {}, {}, {}
  for i = 1, #all, 2 do
    local f = all[i]
    if is_answer_field(f) then
      local k = string.gsub(cjson.encode(string.sub(f, ANSWER_FIELD_PREFIX_LENGTH + 1)), '\\/', '/')
      parts[#parts + 1] = k .. ':' .. all[i + 1]
      index[#index + 1] = index_entry(k, #all[i + 1])
      old[#old + 1] = f
    end
  end
  if #old > 0 then redis.call('HDEL', key, unpack(old)) end
  redis.call('HSET', key, ANSWERS_FIELD, '{' .. table.concat(parts, ',') .. '}', ANSWER_INDEX_FIELD, table.concat(index))
  return true
end
