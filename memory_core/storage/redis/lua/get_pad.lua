-- ARGV: principal, start, stop (inclusive, -1 = end) -> {total, entries...}
local s = session(ARGV[1])
if not s then return redis.error_reply(ERR_NO_SESSION) end
refresh_read(s.lease)
local out = {redis.call('LLEN', PAD)}
local entries = redis.call('LRANGE', PAD, tonumber(ARGV[2]), tonumber(ARGV[3]))
for i = 1, #entries do out[#out + 1] = entries[i] end
return out
