-- Finish a staged write-back: swap the staged keys in (RENAME, no copying), so Redis holds
-- the whole session or none of it. ARGV: only_if_missing ('1'/'0'), principal, lease ms,
-- expires_in ms, task ('' = none), checkpoint key base, staging base, items staged (n),
-- ncp, then per checkpoint (oldest first): id, created ms, pttl, size, label
-- -> 1 written, 0 skipped (closed on purpose, or present and only_if_missing),
--    -1 the staging is incomplete (expired meanwhile): the caller starts over.
local stage = ARGV[7]
local function discard()
  local ids = {}
  for i = 10, #ARGV, 5 do ids[#ids + 1] = stage .. 'cp:' .. ARGV[i] end
  redis.call('DEL', stage .. 'meta', stage .. 'vars', stage .. 'exp', stage .. 'pad')
  for _, k in ipairs(ids) do redis.call('DEL', k) end
end
if redis.call('EXISTS', CLOSED) == 1
  or (ARGV[1] == '1' and redis.call('EXISTS', META) == 1) then
  discard()
  return 0
end
local staged = redis.call('HMGET', stage .. 'meta', 'b', 'n')
if tonumber(staged[2] or '0') ~= tonumber(ARGV[8]) then
  discard()
  return -1
end
for i = 10, #ARGV, 5 do
  local pttl = tonumber(ARGV[i + 2])
  if pttl > 0 and redis.call('EXISTS', stage .. 'cp:' .. ARGV[i]) == 0 then
    discard()
    return -1
  end
end
refuse_if_full()
local base = ARGV[6]
for _, id in ipairs(redis.call('HKEYS', CPM)) do redis.call('DEL', base .. id) end
redis.call('DEL', META, VARS, EXP, PAD, CPM)
local bytes = tonumber(staged[1] or '0')
for _, pair in ipairs({{'vars', VARS}, {'exp', EXP}, {'pad', PAD}}) do
  if redis.call('EXISTS', stage .. pair[1]) == 1 then
    redis.call('RENAME', stage .. pair[1], pair[2])
  end
end
redis.call('DEL', stage .. 'meta')
if ARGV[5] ~= '' then
  redis.call('HSET', META, 't', ARGV[5])
  bytes = bytes + #ARGV[5]
end
local expires_in = tonumber(ARGV[4])
redis.call('HSET', META, 'p', ARGV[2], 'l', ARGV[3], 'b', bytes)
redis.call('PEXPIRE', META, expires_in)
redis.call('PEXPIRE', VARS, expires_in)
mark_exp()
redis.call('PEXPIRE', EXP, expires_in)
redis.call('PEXPIRE', PAD, expires_in)
local longest, n = 0, 0
for i = 10, #ARGV, 5 do
  n = n + 1
  local id, created, pttl = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
  local staged_cp = stage .. 'cp:' .. id
  if pttl > 0 then
    redis.call('RENAME', staged_cp, base .. id)
    redis.call('PEXPIRE', base .. id, pttl)
    local order = created .. string.format('%03d', n % 1000)
    redis.call('HSET', CPM, id, order .. '|' .. created .. '|' .. ARGV[i + 3] .. '|' .. ARGV[i + 4])
    if pttl > longest then longest = pttl end
  else
    redis.call('DEL', staged_cp)
  end
end
if longest > 0 then redis.call('PEXPIRE', CPM, longest) end
return 1
