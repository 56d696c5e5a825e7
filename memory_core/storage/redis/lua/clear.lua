-- ARGV: principal -> number of live variables removed
local s = session(ARGV[1])
if not s then return redis.error_reply(ERR_NO_SESSION) end
purge(now_ms())
local all = redis.call('HGETALL', VARS)
local freed = 0
for i = 1, #all, 2 do freed = freed + #all[i] + #all[i + 1] end
redis.call('DEL', VARS, EXP)
mark_exp()
if freed > 0 then redis.call('HINCRBY', META, 'b', -freed) end
refresh(s.lease)
return #all / 2
