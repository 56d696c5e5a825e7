-- ARGV: principal, entry, max_entries, max_session_bytes -> length after append
local s = session(ARGV[1])
if not s then return redis.error_reply(ERR_NO_SESSION) end
refuse_if_full()
local bytes = s.bytes - purge(now_ms())
refresh(s.lease)
local n = redis.call('LLEN', PAD)
if n >= tonumber(ARGV[3]) then
  return limit('max_scratchpad_entries', ARGV[3], n)
end
if bytes + #ARGV[2] > tonumber(ARGV[4]) then
  bytes = recount(true)  -- not bytes lost with an evicted key
end
if bytes + #ARGV[2] > tonumber(ARGV[4]) then
  return limit('max_session_bytes', ARGV[4], bytes)
end
n = redis.call('RPUSH', PAD, ARGV[2])
redis.call('PEXPIRE', PAD, s.lease)
redis.call('HINCRBY', META, 'b', #ARGV[2])
return n
