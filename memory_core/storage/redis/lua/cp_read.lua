-- Read another session's checkpoint for recovery: only once that session has ended and
-- only for the same principal. KEYS: 1 the owner's meta, 2 the checkpoint blob.
-- ARGV: principal -> snapshot json or nil
if redis.call('EXISTS', KEYS[1]) == 1 then return nil end
local blob = redis.call('GET', KEYS[2])
if not blob then return nil end
if cjson.decode(blob).p ~= ARGV[1] then return nil end
return blob
