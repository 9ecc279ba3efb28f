--[[
  Read an attempt for a response when the plain read (HMGET of RENDER_FIELDS, sessionStore.ts)
  found it cached in the earlier layout: converts it, then renders it.
  Input:
    KEYS[1] session:{id}
  Output:
    {'OK', 0, render()}  the attempt (see includes/render.lua)
    {'MISS'}             not cached
]]
--- @include "fields"
--- @include "layout"
--- @include "render"
upgrade_layout(KEYS[1])
local attempt, meta = render()
if not meta.version then return {'MISS'} end
return {'OK', 0, attempt}
