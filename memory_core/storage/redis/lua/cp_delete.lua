-- ARGV: principal, checkpoint id, checkpoint key base -> 0/1
local s = session(ARGV[1])
if not s then return redis.error_reply(ERR_NO_SESSION) end
refresh(s.lease)
if redis.call('HDEL', CPM, ARGV[2]) == 0 then return 0 end
return redis.call('DEL', ARGV[3] .. ARGV[2])
