-- ARGV: principal, task json, max_session_bytes
local s = session(ARGV[1])
if not s then return redis.error_reply(ERR_NO_SESSION) end
refuse_if_full()
local bytes = s.bytes - purge(now_ms())
local old = redis.call('HGET', META, 't')
local new_bytes = bytes + #ARGV[2] - (old and #old or 0)
refresh(s.lease)
if new_bytes > tonumber(ARGV[3]) then
  local counted = recount(true)  -- not bytes lost with an evicted key
  new_bytes, bytes = new_bytes - bytes + counted, counted
end
if new_bytes > tonumber(ARGV[3]) then
  return limit('max_session_bytes', ARGV[3], bytes)
end
redis.call('HSET', META, 't', ARGV[2], 'b', new_bytes)
return 1
