-- ARGV: principal, key, value, ttl_ms ('' = none), max_keys, max_session_bytes
local s = session(ARGV[1])
if not s then return redis.error_reply(ERR_NO_SESSION) end
refuse_if_full()
local now = now_ms()
local bytes = s.bytes - purge(now)
local key, value = ARGV[2], ARGV[3]
local old = redis.call('HGET', VARS, key)
local new_bytes = bytes + #key + #value
if old then
  new_bytes = new_bytes - #key - #old
else
  local n = redis.call('HLEN', VARS)
  if n >= tonumber(ARGV[5]) then
    refresh_read(s.lease)
    return limit('max_keys', ARGV[5], n)
  end
end
if new_bytes > tonumber(ARGV[6]) then
  local counted = recount(true)  -- not bytes lost with an evicted key
  new_bytes, bytes = new_bytes - bytes + counted, counted
end
if new_bytes > tonumber(ARGV[6]) then
  refresh_read(s.lease)
  return limit('max_session_bytes', ARGV[6], bytes)
end
redis.call('HSET', VARS, key, value)
redis.call('PEXPIRE', VARS, s.lease)
if ARGV[4] ~= '' then
  redis.call('ZADD', EXP, now + tonumber(ARGV[4]), key)
  redis.call('PEXPIRE', EXP, s.lease)
elseif old then
  redis.call('ZREM', EXP, key)
end
redis.call('HSET', META, 'b', new_bytes)
refresh_read(s.lease)
return 1
