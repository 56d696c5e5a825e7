-- ARGV: principal -> live keys (unsorted)
local s = session(ARGV[1])
if not s then return redis.error_reply(ERR_NO_SESSION) end
purge(now_ms())
refresh_read(s.lease)
return redis.call('HKEYS', VARS)
