-- Write a whole session (fallback write-back). ARGV: only_if_missing ('1'/'0'), principal,
-- lease ms, expires_in ms, task ('' = none), checkpoint key base, nvars, k, v, ttl (-1 none)...,
-- npad, entries..., ncp, id, created, pttl, blob, ... (oldest first) -> 1 written / 0 skipped
if ARGV[1] == '1' and redis.call('EXISTS', META) == 1 then return 0 end
refuse_if_full()
local now = now_ms()
local base = ARGV[6]
for _, id in ipairs(redis.call('HKEYS', CPM)) do redis.call('DEL', base .. id) end
redis.call('DEL', META, VARS, EXP, PAD, CPM)
local expires_in = tonumber(ARGV[4])
local bytes = 0
local i = 7
local nvars = tonumber(ARGV[i]); i = i + 1
for _ = 1, nvars do
  local k, v, ttl = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
  redis.call('HSET', VARS, k, v)
  if ttl >= 0 then redis.call('ZADD', EXP, now + ttl, k) end
  bytes = bytes + #k + #v
  i = i + 3
end
local npad = tonumber(ARGV[i]); i = i + 1
for j = i, i + npad - 1, 500 do
  redis.call('RPUSH', PAD, unpack(ARGV, j, math.min(j + 499, i + npad - 1)))
end
for j = i, i + npad - 1 do bytes = bytes + #ARGV[j] end
i = i + npad
if ARGV[5] ~= '' then
  redis.call('HSET', META, 't', ARGV[5])
  bytes = bytes + #ARGV[5]
end
redis.call('HSET', META, 'p', ARGV[2], 'l', ARGV[3], 'b', bytes)
redis.call('PEXPIRE', META, expires_in)
redis.call('PEXPIRE', VARS, expires_in)
mark_exp()
redis.call('PEXPIRE', EXP, expires_in)
redis.call('PEXPIRE', PAD, expires_in)
local ncp = tonumber(ARGV[i]); i = i + 1
local longest = 0
for n = 1, ncp do
  local id, created, pttl, blob = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2]), ARGV[i + 3]
  if pttl > 0 then
    redis.call('SET', base .. id, blob, 'PX', pttl)
    local order = created .. string.format('%03d', n % 1000)
    redis.call('HSET', CPM, id, order .. '|' .. created .. '|' .. #blob .. '|' .. cjson.decode(blob).l)
    if pttl > longest then longest = pttl end
  end
  i = i + 4
end
if longest > 0 then redis.call('PEXPIRE', CPM, longest) end
return 1
