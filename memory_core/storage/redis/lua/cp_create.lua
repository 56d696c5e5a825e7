-- ARGV: principal, checkpoint id, label ('' = none), checkpoint key base, max checkpoints,
--       retention ms, session id -> {created ms, size, evicted id...}
local s = session(ARGV[1])
if not s then return redis.error_reply(ERR_NO_SESSION) end
refuse_if_full()
local now = now_ms()
purge(now)
refresh(s.lease)
local base, retention, max = ARGV[4], tonumber(ARGV[6]), tonumber(ARGV[5])
local vars = variables(now)
local blob = cjson.encode({
  s = ARGV[7], p = ARGV[1], l = ARGV[3], c = now, v = vars,
  t = redis.call('HGET', META, 't') or '', x = redis.call('LRANGE', PAD, 0, -1),
})
redis.call('SET', base .. ARGV[2], blob, 'PX', retention)
redis.call('HSET', CPM, ARGV[2], now_us_str() .. '|' .. now .. '|' .. #blob .. '|' .. ARGV[3])
redis.call('PEXPIRE', CPM, retention)
local out = {now, #blob}
local n = redis.call('HLEN', CPM)
if n > max then
  local entries = redis.call('HGETALL', CPM)
  local list = {}
  for i = 1, #entries, 2 do
    -- order_us has 16 digits: compare as zero-padded strings, exact and monotonic
    local order = string.match(entries[i + 1], '^(%d+)|')
    order = string.rep('0', 20 - #order) .. order
    list[#list + 1] = {order, entries[i]}
  end
  table.sort(list, function(a, b)
    if a[1] ~= b[1] then return a[1] < b[1] end
    return a[2] < b[2]
  end)
  for i = 1, n - max do
    local id = list[i][2]
    if id ~= ARGV[2] then
      redis.call('HDEL', CPM, id)
      if redis.call('DEL', base .. id) == 1 then out[#out + 1] = id end
    end
  end
end
return out
