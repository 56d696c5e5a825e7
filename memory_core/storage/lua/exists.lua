-- ARGV: principal, key -> 0/1
local s = session(ARGV[1])
if not s then return redis.error_reply(NO_SESSION) end
local now = now_ms()
refresh(s.lease)
if expire_one(ARGV[2], now) then return 0 end
return redis.call('HEXISTS', VARS, ARGV[2])
