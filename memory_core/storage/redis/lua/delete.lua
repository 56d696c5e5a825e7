-- ARGV: principal, key -> 0/1
local s = session(ARGV[1])
if not s then return redis.error_reply(ERR_NO_SESSION) end
local now = now_ms()
refresh(s.lease)
if expire_one(ARGV[2], now) then return 0 end
local v = redis.call('HGET', VARS, ARGV[2])
if not v then return 0 end
redis.call('HDEL', VARS, ARGV[2])
redis.call('ZREM', EXP, ARGV[2])
redis.call('HINCRBY', META, 'b', -(#ARGV[2] + #v))
return 1
