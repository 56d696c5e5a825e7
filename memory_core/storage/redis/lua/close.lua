-- ARGV: principal. Removes live state; checkpoints (cpm + blobs) keep their retention TTL.
local s = session(ARGV[1])
if not s then return 0 end
redis.call('DEL', META, VARS, EXP, PAD)
redis.call('SET', CLOSED, '1', 'PX', s.lease)
return 1
