--[[
  render(): the attempt in KEYS[1] as {meta fields in META_FIELDS order..., the answers' JSON object
  text}, and (a second value) its meta fields by name, empty when the key does not exist. One HMGET:
  the answers are stored as the text they are sent as (sessionCodec.ts), so nothing is joined here.
  In a table constructor write (render()), so only the first value is taken.
  Needs the "fields" include.
]]
local function render()
  local values = redis.call('HMGET', KEYS[1], unpack(RENDER_FIELDS))
  local meta = {}
  local out = {}
  for i = 1, #META_FIELDS do
    local v = values[i]
    if v then meta[META_FIELDS[i]] = v end
    out[i] = v or ''
  end
  out[#META_FIELDS + 1] = values[#META_FIELDS + 1] or '{}'
  return out, meta
end
