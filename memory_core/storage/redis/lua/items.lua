-- ARGV: principal -> flat {key, value, ttl_ms or -1, ...}
local s = session(ARGV[1])
if not s then return redis.error_reply(ERR_NO_SESSION) end
local now = now_ms()
purge(now)
refresh_read(s.lease)
local out = {}
for _, e in ipairs(variables(now)) do
  out[#out + 1] = e[1]
  out[#out + 1] = e[2]
  out[#out + 1] = e[3]
end
return out
