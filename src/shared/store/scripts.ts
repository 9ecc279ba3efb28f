import { META_FIELDS } from './sessionCodec';

/*
 * Lua scripts for session:{id}. Each write is one script, so the version check, the deadline check
 * and the update are one atomic Redis step and one round trip. Write scripts return
 * {code, first, render()}: code EXPIRED means the write found the deadline passed and expired the
 * attempt itself (a transition, which the caller reports and persists); `first` is 1 when the write made the attempt dirty (its first change not yet
 * in PostgreSQL), which is when the caller schedules the write-behind.
 *
 * KEYS[1] = session:{id}, KEYS[2] = the dirty set (zset of id -> dirty since, ms).
 * Common ARGV: [1] now (ms), [2] cache TTL (s), [3] expected version or '', [4] the user the caller
 * acts for, or '' (any): another user's attempt answers {'FORBIDDEN'} and reveals nothing.
 */
/**
 * render(): the attempt as {meta fields in META_FIELDS order..., answers as one JSON object text}.
 * Joining the answers here (they are stored as JSON text) saves the API from splitting and
 * re-joining them on every request; question ids are escaped with cjson.
 */
const RENDER = `
local function render()
  local all = redis.call('HGETALL', KEYS[1])
  local meta = {}
  local parts = {}
  for i = 1, #all, 2 do
    local f = all[i]
    if string.byte(f, 1) == 97 and string.byte(f, 2) == 58 then
      parts[#parts + 1] = cjson.encode(string.sub(f, 3)) .. ':' .. all[i + 1]
    else
      meta[f] = all[i + 1]
    end
  end
  return {${META_FIELDS.map((f) => `meta['${f}'] or ''`).join(', ')}, '{' .. table.concat(parts, ',') .. '}'}
end
`;

/** Read: {'OK', 0, render()} or {'MISS'}. */
export const READ_SCRIPT = `${RENDER}
if redis.call('EXISTS', KEYS[1]) == 0 then return {'MISS'} end
return {'OK', 0, render()}
`;

const PROLOGUE = `${RENDER}
local key = KEYS[1]
local now = tonumber(ARGV[1])
if redis.call('EXISTS', key) == 0 then return {'MISS'} end
local m = redis.call('HMGET', key, 'status', 'v', 'expires_at', 'dirty', 'id', 'updated_at', 'user_id')
if ARGV[4] ~= '' and m[7] ~= ARGV[4] then return {'FORBIDDEN'} end
local status = m[1]
local v = tonumber(m[2])
local open = status == 'started' or status == 'in_progress'
local function mark_dirty(f)
  if m[4] == '' then
    f[#f + 1] = 'dirty'
    f[#f + 1] = ARGV[1]
    redis.call('ZADD', KEYS[2], now, m[5])
    return 1
  end
  return 0
end
local function apply(f, code)
  local first = mark_dirty(f)
  redis.call('HSET', key, unpack(f))
  redis.call('EXPIRE', key, ARGV[2])
  return {code, first, render()}
end
local function reply(code)
  return {code, 0, render()}
end
-- The deadline is the rule: an open attempt past it becomes expired at its deadline, whoever looks.
local function expire_if_due()
  if open and m[3] ~= '' and now >= tonumber(m[3]) then
    return apply({'status', 'expired', 'ended_at', m[3], 'v', v + 1, 'updated_at', ARGV[1]}, 'EXPIRED')
  end
  return nil
end
`;

/**
 * Progress. ARGV[5] current question or '', ARGV[6] most answers an attempt may hold,
 * ARGV[7..] answer field/value pairs. Codes: OK, MISS, CONFLICT, COMPLETED, CLOSED, EXPIRED, TOO_MANY.
 */
export const PROGRESS_SCRIPT = `${PROLOGUE}
local closed = expire_if_due()
if closed then return closed end
if status == 'completed' then return reply('COMPLETED') end
if not open then return reply('CLOSED') end
if ARGV[3] ~= '' and tonumber(ARGV[3]) ~= v then return reply('CONFLICT') end
if #ARGV > 6 then
  local count = redis.call('HLEN', key) - ${META_FIELDS.length}
  for i = 7, #ARGV, 2 do
    if redis.call('HEXISTS', key, ARGV[i]) == 0 then count = count + 1 end
  end
  if count > tonumber(ARGV[6]) then return reply('TOO_MANY') end
end
local f = {'v', v + 1, 'updated_at', ARGV[1], 'status', 'in_progress'}
if ARGV[5] ~= '' then
  f[#f + 1] = 'cq'
  f[#f + 1] = ARGV[5]
end
for i = 7, #ARGV do f[#f + 1] = ARGV[i] end
return apply(f, 'OK')
`;

/**
 * Close: complete, abandon or expire. ARGV[5] target status, ARGV[6] guard: '' (the student asks),
 * 'deadline' (only once the deadline has passed) or 'idle' (only when the last activity is at least
 * ARGV[7] ms old). Codes: OK, ALREADY (already in the target status), MISS, CONFLICT, CLOSED (closed
 * otherwise), EXPIRED (found past its deadline and expired instead), NOOP (the guard does not hold).
 */
export const CLOSE_SCRIPT = `${PROLOGUE}
local target = ARGV[5]
if status == target then return reply('ALREADY') end
local closed = expire_if_due()
if closed then
  if target == 'expired' then closed[1] = 'OK' end
  return closed
end
if not open then return reply('CLOSED') end
if ARGV[6] == 'deadline' then return reply('NOOP') end
if ARGV[6] == 'idle' and now - tonumber(m[6]) < tonumber(ARGV[7]) then return reply('NOOP') end
if ARGV[3] ~= '' and tonumber(ARGV[3]) ~= v then return reply('CONFLICT') end
local f = {'status', target, 'ended_at', ARGV[1], 'v', v + 1, 'updated_at', ARGV[1]}
if target == 'completed' then
  f[#f + 1] = 'completed_at'
  f[#f + 1] = ARGV[1]
end
return apply(f, 'OK')
`;

/**
 * Cache fill from PostgreSQL (or a new attempt): writes the whole hash unless the cached copy is as
 * new or newer, so a fill never overwrites a newer version. ARGV[1] TTL, ARGV[2] version,
 * ARGV[3..] field/value pairs. Returns 1 when written, 0 when kept.
 */
export const FILL_SCRIPT = `
local cur = redis.call('HGET', KEYS[1], 'v')
if cur and tonumber(cur) >= tonumber(ARGV[2]) then return 0 end
if cur then redis.call('DEL', KEYS[1]) end
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 1
`;

/**
 * After a snapshot at version ARGV[1] reached PostgreSQL: clean when that is still the current
 * version; when a newer write landed meanwhile, stay dirty with a new window starting ARGV[2].
 * KEYS[1] session key, KEYS[2] dirty set, ARGV[3] id. Returns CLEAN, DIRTY or GONE.
 */
export const MARK_PERSISTED_SCRIPT = `
local m = redis.call('HMGET', KEYS[1], 'v', 'dirty')
if not m[1] then
  redis.call('ZREM', KEYS[2], ARGV[3])
  return 'GONE'
end
if tonumber(m[1]) <= tonumber(ARGV[1]) then
  if m[2] ~= '' then redis.call('HSET', KEYS[1], 'dirty', '') end
  redis.call('ZREM', KEYS[2], ARGV[3])
  return 'CLEAN'
end
redis.call('HSET', KEYS[1], 'dirty', ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
return 'DIRTY'
`;

/**
 * Rebase: PostgreSQL holds a version of the attempt that Redis has handed out again (Redis came
 * back from an older state). Moves the Redis copy to ARGV[2] (above PostgreSQL's), if it is still
 * at ARGV[1], keeping it dirty; returns {'OK', 0, render()} or {'MOVED'} when it changed meanwhile.
 * KEYS[1] session key, KEYS[2] dirty set, ARGV[3] now.
 */
export const REBASE_SCRIPT = `${RENDER}
local v = redis.call('HGET', KEYS[1], 'v')
if not v or tonumber(v) ~= tonumber(ARGV[1]) then return {'MOVED'} end
redis.call('HSET', KEYS[1], 'v', ARGV[2])
if redis.call('HGET', KEYS[1], 'dirty') == '' then
  redis.call('HSET', KEYS[1], 'dirty', ARGV[3])
  redis.call('ZADD', KEYS[2], ARGV[3], redis.call('HGET', KEYS[1], 'id'))
end
return {'OK', 0, render()}
`;
