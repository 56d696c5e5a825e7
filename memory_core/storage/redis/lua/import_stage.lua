-- One bounded piece of a staged write-back (see import_commit.lua). Staging keys live under
-- the session's hash tag with their own TTL, so an abandoned attempt leaves nothing behind.
-- ARGV: staging base, staging ttl ms, kind, items...
--   kind 'v': k, v, ttl ms (-1 none), ...   kind 'p': entries...   kind 'c': checkpoint id, bytes
-- Every piece adds its bytes (b, variables + scratchpad) and item count (n) to <stage>meta.
refuse_if_full()
local stage, ttl, kind = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local smeta = stage .. 'meta'
local bytes, n = 0, 0
if kind == 'v' then
  local now = now_ms()
  for i = 4, #ARGV, 3 do
    local k, v, t = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
    redis.call('HSET', stage .. 'vars', k, v)
    if t >= 0 then
      redis.call('ZADD', stage .. 'exp', now + t, k)
      redis.call('PEXPIRE', stage .. 'exp', ttl)
    end
    bytes = bytes + #k + #v
    n = n + 1
  end
  redis.call('PEXPIRE', stage .. 'vars', ttl)
elseif kind == 'p' then
  for i = 4, #ARGV do bytes = bytes + #ARGV[i] end
  redis.call('RPUSH', stage .. 'pad', unpack(ARGV, 4))
  redis.call('PEXPIRE', stage .. 'pad', ttl)
  n = #ARGV - 3
else
  local key = stage .. 'cp:' .. ARGV[4]
  redis.call('APPEND', key, ARGV[5])
  redis.call('PEXPIRE', key, ttl)
end
redis.call('HINCRBY', smeta, 'b', bytes)
redis.call('HINCRBY', smeta, 'n', n)
redis.call('PEXPIRE', smeta, ttl)
return 1
