-- ARGV: principal -> flat {key, value, ttl_ms or -1, ...}
local s = session(ARGV[1])
if not s then return redis.error_reply(NO_SESSION) end
local now = now_ms()
purge(now)
refresh_read(s.lease)
local all = redis.call('HGETALL', VARS)
local ttls = {}
local z = redis.call('ZRANGE', EXP, 0, -1, 'WITHSCORES')
for i = 1, #z, 2 do ttls[z[i]] = tonumber(z[i + 1]) - now end
local out = {}
for i = 1, #all, 2 do
  out[#out + 1] = all[i]
  out[#out + 1] = all[i + 1]
  out[#out + 1] = ttls[all[i]] or -1
end
return out
