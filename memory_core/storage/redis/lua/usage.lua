-- ARGV: principal -> {keys, bytes, pad entries, checkpoints, lease}
local s = session(ARGV[1])
if not s then return redis.error_reply(ERR_NO_SESSION) end
local bytes = s.bytes - purge(now_ms())
refresh_read(s.lease)
return {redis.call('HLEN', VARS), bytes, redis.call('LLEN', PAD), redis.call('HLEN', CPM), s.lease}
