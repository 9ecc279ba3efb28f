--[[
  render(): the attempt in KEYS[1] as {meta fields in META_FIELDS order..., the answers' JSON object
  text}, and (a second value) its fields by name, empty when the key does not exist. render_row()
  makes that row from fields by name (the write scripts' reply, from what they read and wrote). One HMGET:
  the answers are stored as the text they are sent as (sessionCodec.ts), so nothing is joined here.
  In a table constructor write (render()), so only the first value is taken.
  OPENING_FIELDS: what the write scripts read first (includes/write.lua): everything a reply
  renders, and the answers' index, so that after a write the reply is rendered from these and the
  fields written, with no second read of the hash. LATE_FIELDS: fields a hash cached before they
  existed may lack (read as '').
  Needs the "fields" include.
]]
-- the attempt's fields by name as the reply row: META_FIELDS in order ('' when absent), then the answers' text
local function render_row(fields)
  local out = {}
  for i = 1, #META_FIELDS do out[i] = fields[META_FIELDS[i]] or '' end
  out[#META_FIELDS + 1] = fields[ANSWERS_FIELD] or '{}'
  return out
end

local function render()
  local meta = read_fields(KEYS[1], RENDER_FIELDS)
  return render_row(meta), meta
end

local OPENING_FIELDS = {ANSWER_INDEX_FIELD}
for i = 1, #RENDER_FIELDS do OPENING_FIELDS[i + 1] = RENDER_FIELDS[i] end
local LATE_FIELDS = {'overdue_handling', 'grace_period_seconds', 'paused_at', 'paused_from', 'ended_at', 'event_seq'}
