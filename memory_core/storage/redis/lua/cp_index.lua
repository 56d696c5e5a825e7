-- Index a new checkpoint under its principal (the principal's slot, not the session's).
-- KEYS: 1 zset id -> created ms, 2 hash id -> "created|size|label".
-- ARGV: id, created ms, size, label, retention ms, most entries kept, evicted id...
local ZS, HS = KEYS[1], KEYS[2]
local created, retention, most = tonumber(ARGV[2]), tonumber(ARGV[5]), tonumber(ARGV[6])
redis.call('ZADD', ZS, created, ARGV[1])
redis.call('HSET', HS, ARGV[1], ARGV[2] .. '|' .. ARGV[3] .. '|' .. ARGV[4])
for i = 7, #ARGV do
  redis.call('ZREM', ZS, ARGV[i])
  redis.call('HDEL', HS, ARGV[i])
end
local gone = redis.call('ZRANGEBYSCORE', ZS, '-inf', '(' .. (created - retention))
local n = redis.call('ZCARD', ZS)
if n - #gone > most then
  gone = redis.call('ZRANGE', ZS, 0, n - most - 1)
end
for _, id in ipairs(gone) do
  redis.call('ZREM', ZS, id)
  redis.call('HDEL', HS, id)
end
redis.call('PEXPIRE', ZS, retention)
redis.call('PEXPIRE', HS, retention)
return 1
