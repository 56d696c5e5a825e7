-- The principal's indexed checkpoints, newest first. KEYS: 1 zset, 2 hash.
-- ARGV: how many -> {id, "created|size|label", ...}
local ids = redis.call('ZREVRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
local out = {}
for _, id in ipairs(ids) do
  local summary = redis.call('HGET', KEYS[2], id)
  if summary then
    out[#out + 1] = id
    out[#out + 1] = summary
  end
end
return out
