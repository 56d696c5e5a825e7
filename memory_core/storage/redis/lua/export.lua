-- ARGV: checkpoint key base -> nil, or
-- {{principal, lease, pttl, task}, {k, v, ttl, ...}, {entries...},
--  {id, created ms, pttl, blob, order us, ...}}
local m = redis.call('HMGET', META, 'p', 'l', 't')
if not m[1] then return nil end
local now = now_ms()
purge(now)
local vars = {}
for _, e in ipairs(variables(now)) do
  vars[#vars + 1] = e[1]
  vars[#vars + 1] = e[2]
  vars[#vars + 1] = e[3]
end
local cps = {}
local entries = redis.call('HGETALL', CPM)
for i = 1, #entries, 2 do
  local key = ARGV[1] .. entries[i]
  local blob = redis.call('GET', key)
  if blob then
    local order, created = string.match(entries[i + 1], '^(%d+)|(%d+)|')
    cps[#cps + 1] = entries[i]
    cps[#cps + 1] = created
    cps[#cps + 1] = redis.call('PTTL', key)
    cps[#cps + 1] = blob
    cps[#cps + 1] = order
  end
end
return {{m[1], m[2], redis.call('PTTL', META), m[3] or ''}, vars,
        redis.call('LRANGE', PAD, 0, -1), cps}
