-- ARGV: principal, key -> {value, ttl_ms or -1} or nil
local s = session(ARGV[1])
if not s then return redis.error_reply(NO_SESSION) end
local now = now_ms()
refresh(s.lease)
if expire_one(ARGV[2], now) then return nil end
local v = redis.call('HGET', VARS, ARGV[2])
if not v then return nil end
local at = redis.call('ZSCORE', EXP, ARGV[2])
if at then return {v, tonumber(at) - now} end
return {v, -1}
