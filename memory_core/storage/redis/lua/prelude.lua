-- Shared by every session script (prepended by the Python side).
-- KEYS: 1 meta (hash: p principal, l lease ms, b bytes, t task json),
--       2 vars (hash key -> value json), 3 exp (zset key -> expiry ms),
--       4 pad (list of scratchpad entries), 5 cpm (hash checkpoint id -> "order_us|created_ms|size|label")
-- Every key but cpm and checkpoint blobs carries the session lease as its TTL.
local META, VARS, EXP, PAD, CPM = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
-- Set by a deliberate close for one lease (see layout.py): a session closed on purpose is
-- never put back from a mirror; a session whose keys were lost (FLUSHDB, eviction) is.
local CLOSED = META .. ':closed'

-- Error replies a caller can expect: a code, then its arguments, separated by spaces. Each
-- code is defined here and nowhere else in Lua; scripts.SCRIPT_ERRORS (Python) maps each one
-- to the exception the backend raises, and a test keeps the two lists equal.
local ERR_NO_SESSION = 'WM_NOSESSION'  -- no such session, expired, or another principal's
local ERR_NOT_FOUND = 'WM_NOTFOUND'    -- no such checkpoint for this session
local ERR_LIMIT = 'WM_LIMIT'           -- followed by: limit name, maximum, current

-- For a script that may grow the store: be refused now, before any write, when Redis is out
-- of memory (maxmemory reached). Redis refuses a script's first command that may grow memory
-- when it was out of memory as the script started, but after any other write (DEL, PEXPIRE)
-- lets the rest through to keep the script atomic; so a growing script calls this before its
-- first write. SETRANGE of an empty string on a key that never exists writes nothing.
local function refuse_if_full()
  redis.call('SETRANGE', META .. ':oom', 0, '')
end

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Microseconds as a decimal string (tostring would print a float for 16 digits).
local function now_us_str()
  local t = redis.call('TIME')
  return t[1] .. string.format('%06d', tonumber(t[2]))
end

-- The expiry index always holds this member (never a valid key) with an infinite score, so
-- a session whose `exp` is missing has lost it (eviction, a deleted key) rather than simply
-- having no variable with a TTL. Scripts that DEL `exp` put it back with mark_exp().
local function mark_exp()
  redis.call('ZADD', EXP, 'inf', '')
end

-- The expiry index is gone: which variables had a TTL is unknown, and keeping them all
-- would let some outlive their TTL. They are dropped, as if evicted with it (the
-- scratchpad, the task and the checkpoints stay), and the bytes are counted again.
local function expiries_lost()
  redis.call('DEL', VARS)
  mark_exp()
  local bytes = 0
  for _, e in ipairs(redis.call('LRANGE', PAD, 0, -1)) do bytes = bytes + #e end
  local t = redis.call('HGET', META, 't')
  if t then bytes = bytes + #t end
  redis.call('HSET', META, 'b', bytes)
  return bytes
end

-- Load the session or fail: a missing session and another principal's session look the same.
local function session(principal)
  local m = redis.call('HMGET', META, 'p', 'l', 'b')
  if not m[1] or m[1] ~= principal then
    return nil
  end
  local bytes = tonumber(m[3]) or 0
  if redis.call('EXISTS', EXP) == 0 then
    bytes = expiries_lost()
    redis.call('PEXPIRE', EXP, tonumber(m[2]))
  end
  return {lease = tonumber(m[2]), bytes = bytes}
end

local function refresh(lease)
  redis.call('PEXPIRE', META, lease)
  redis.call('PEXPIRE', VARS, lease)
  redis.call('PEXPIRE', EXP, lease)
  redis.call('PEXPIRE', PAD, lease)
end

-- For calls that create no key: refresh only when a tenth of the lease (at most a second)
-- has passed since the last refresh, so a hot path costs one PTTL instead of four PEXPIREs.
local function refresh_read(lease)
  if lease - redis.call('PTTL', META) >= math.min(1000, lease / 10) then refresh(lease) end
end

local function hdel_all(key, fields)
  for i = 1, #fields, 500 do
    redis.call('HDEL', key, unpack(fields, i, math.min(i + 499, #fields)))
  end
end

-- Drop every expired variable; returns the bytes freed (already subtracted from meta b).
local function purge(now)
  local dead = redis.call('ZRANGEBYSCORE', EXP, '-inf', now)
  if #dead == 0 then return 0 end
  local freed = 0
  for _, k in ipairs(dead) do
    local v = redis.call('HGET', VARS, k)
    if v then freed = freed + #k + #v end
  end
  hdel_all(VARS, dead)
  redis.call('ZREMRANGEBYSCORE', EXP, '-inf', now)
  if freed > 0 then redis.call('HINCRBY', META, 'b', -freed) end
  return freed
end

-- Is one key expired? If so remove it now (lazy reclaim) and return true.
local function expire_one(key, now)
  local at = redis.call('ZSCORE', EXP, key)
  if at and tonumber(at) <= now then
    local v = redis.call('HGET', VARS, key)
    redis.call('HDEL', VARS, key)
    redis.call('ZREM', EXP, key)
    if v then redis.call('HINCRBY', META, 'b', -(#key + #v)) end
    return true
  end
  return false
end

-- Every live variable as {key, value, remaining ttl ms or -1} (call purge first).
local function variables(now)
  local all = redis.call('HGETALL', VARS)
  local ttls = {}
  local z = redis.call('ZRANGE', EXP, 0, -1, 'WITHSCORES')
  for i = 1, #z, 2 do ttls[z[i]] = tonumber(z[i + 1]) - now end
  local out = {}
  for i = 1, #all, 2 do out[#out + 1] = {all[i], all[i + 1], ttls[all[i]] or -1} end
  return out
end

-- Count the session's bytes again from what is stored and record it in meta b. Redis can
-- lose single keys of a session (eviction under a volatile-* policy, a key deleted by
-- hand): b would go on counting bytes that are gone. O(size): only called where it
-- matters (usage with the variables missing, a write about to be refused for size).
-- Records the count only when store is true (a read must not write: under OOM it is refused).
local function recount(store)
  local bytes = 0
  local all = redis.call('HGETALL', VARS)
  for i = 1, #all do bytes = bytes + #all[i] end
  for _, e in ipairs(redis.call('LRANGE', PAD, 0, -1)) do bytes = bytes + #e end
  local t = redis.call('HGET', META, 't')
  if t then bytes = bytes + #t end
  if store then redis.call('HSET', META, 'b', bytes) end
  return bytes
end

local function limit(name, max, current)
  return redis.error_reply(ERR_LIMIT .. ' ' .. name .. ' ' .. max .. ' ' .. current)
end
