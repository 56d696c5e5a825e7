-- ARGV: principal, checkpoint key base -> flat {id, "created|size|label", ...}
local s = session(ARGV[1])
if not s then return redis.error_reply(ERR_NO_SESSION) end
refresh_read(s.lease)
local entries = redis.call('HGETALL', CPM)
local out = {}
for i = 1, #entries, 2 do
  if redis.call('EXISTS', ARGV[2] .. entries[i]) == 1 then
    out[#out + 1] = entries[i]
    out[#out + 1] = entries[i + 1]
  else
    redis.call('HDEL', CPM, entries[i])
  end
end
return out
