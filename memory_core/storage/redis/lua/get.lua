-- ARGV: principal, key -> {value, ttl_ms or -1} or nil
local s = session(ARGV[1])
if not s then return redis.error_reply(ERR_NO_SESSION) end
refresh_read(s.lease)
local key = ARGV[2]
local at = redis.call('ZSCORE', EXP, key)
if at then
  local left = tonumber(at) - now_ms()
  if left <= 0 then
    expire_one(key, math.huge)
    return nil
  end
  local v = redis.call('HGET', VARS, key)
  if not v then  -- the value was lost (eviction, a deleted key): forget its expiry too
    redis.call('ZREM', EXP, key)
    return nil
  end
  return {v, left}
end
local v = redis.call('HGET', VARS, key)
if not v then return nil end
return {v, -1}
