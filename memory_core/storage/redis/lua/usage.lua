-- ARGV: principal -> {keys, bytes, pad entries, checkpoints, lease}
local s = session(ARGV[1])
if not s then return redis.error_reply(ERR_NO_SESSION) end
local bytes = s.bytes - purge(now_ms())
if bytes > 0 and redis.call('EXISTS', VARS) == 0 then
  bytes = recount(false)  -- the variables were lost (eviction): count what is there
end
refresh_read(s.lease)
return {redis.call('HLEN', VARS), bytes, redis.call('LLEN', PAD), redis.call('HLEN', CPM), s.lease}
