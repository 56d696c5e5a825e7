-- ARGV: principal, max bytes, key... -> flat {key, value, ttl_ms or -1, ...}
-- One page of variables in the order asked for: absent or expired keys are skipped; stops
-- after the entry that takes the running total of key and value bytes past max bytes.
-- Costs the keys asked for (HGET and ZSCORE each), never the whole session.
local s = session(ARGV[1])
if not s then return redis.error_reply(ERR_NO_SESSION) end
refresh_read(s.lease)
local now = now_ms()
local max_bytes = tonumber(ARGV[2])
local out = {}
local total = 0
for i = 3, #ARGV do
  local key = ARGV[i]
  local at = redis.call('ZSCORE', EXP, key)
  local left = -1
  if at then left = tonumber(at) - now end
  if at and left <= 0 then
    expire_one(key, math.huge)
  else
    local v = redis.call('HGET', VARS, key)
    if v then
      out[#out + 1] = key
      out[#out + 1] = v
      out[#out + 1] = left
      total = total + #key + #v
      if total > max_bytes then break end
    end
  end
end
return out
