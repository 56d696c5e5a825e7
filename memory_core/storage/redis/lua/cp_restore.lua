-- ARGV: principal, checkpoint id, checkpoint key base, snapshot json ('' = read this
-- session's own checkpoint) -> 1, or error ERR_NOT_FOUND
local s = session(ARGV[1])
if not s then return redis.error_reply(ERR_NO_SESSION) end
refuse_if_full()
local now = now_ms()
local blob = ARGV[4]
if blob == '' then
  if redis.call('HEXISTS', CPM, ARGV[2]) == 0 then return redis.error_reply(ERR_NOT_FOUND) end
  blob = redis.call('GET', ARGV[3] .. ARGV[2])
  if not blob then return redis.error_reply(ERR_NOT_FOUND) end
end
local snap = cjson.decode(blob)
redis.call('DEL', VARS, EXP, PAD)
mark_exp()
local bytes = 0
for _, e in ipairs(snap.v) do
  redis.call('HSET', VARS, e[1], e[2])
  if tonumber(e[3]) >= 0 then redis.call('ZADD', EXP, now + tonumber(e[3]), e[1]) end
  bytes = bytes + #e[1] + #e[2]
end
local pad = snap.x
for i = 1, #pad, 500 do
  redis.call('RPUSH', PAD, unpack(pad, i, math.min(i + 499, #pad)))
end
for i = 1, #pad do bytes = bytes + #pad[i] end
if snap.t ~= '' then
  redis.call('HSET', META, 't', snap.t)
  bytes = bytes + #snap.t
else
  redis.call('HDEL', META, 't')
end
redis.call('HSET', META, 'b', bytes)
refresh(s.lease)
return 1
