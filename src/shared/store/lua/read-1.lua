--[[
  Read an attempt for a response.
  Input:
    KEYS[1] session:{id}
  Output:
    {'OK', 0, render()}  the attempt (see includes/render.lua)
    {'MISS'}             not cached (or cached in another layout)
]]
--- @include "fields"
--- @include "render"
local attempt, meta = render()
-- no version: no key (or a hash of another layout, which the caller replaces from PostgreSQL)
if not meta.version then return {'MISS'} end
return {'OK', 0, attempt}
