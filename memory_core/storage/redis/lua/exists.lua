-- ARGV: principal, key -> 0/1
local s = session(ARGV[1])
if not s then return redis.error_reply(ERR_NO_SESSION) end
refresh_read(s.lease)
local at = redis.call('ZSCORE', EXP, ARGV[2])
if at and expire_one(ARGV[2], now_ms()) then return 0 end
return redis.call('HEXISTS', VARS, ARGV[2])
