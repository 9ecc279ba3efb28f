--[[
  render(): the attempt in KEYS[1] as {meta fields in META_FIELDS order..., answers as one JSON
  object text}, and (a second value) its meta fields by name, empty when the key does not exist. Joining the answers here (they are stored as JSON text) saves the API from
  splitting and re-joining them on every request; question ids are escaped with cjson.
  In a table constructor write (render()), so only the first value is taken.
  Needs the "fields" include.
]]
local function render()
  local all = redis.call('HGETALL', KEYS[1])
  local meta = {}
  local parts = {}
  for i = 1, #all, 2 do
    local f = all[i]
    if is_answer_field(f) then
      parts[#parts + 1] = cjson.encode(string.sub(f, ANSWER_FIELD_PREFIX_LENGTH + 1)) .. ':' .. all[i + 1]
    else
      meta[f] = all[i + 1]
    end
  end
  local out = {}
  for i = 1, #META_FIELDS do out[i] = meta[META_FIELDS[i]] or '' end
  out[#META_FIELDS + 1] = '{' .. table.concat(parts, ',') .. '}'
  return out, meta
end
