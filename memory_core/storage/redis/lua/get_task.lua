-- ARGV: principal -> task json or nil
local s = session(ARGV[1])
if not s then return redis.error_reply(ERR_NO_SESSION) end
refresh_read(s.lease)
return redis.call('HGET', META, 't')
