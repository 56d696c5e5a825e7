-- Can another session's checkpoint be restored (its session ended, its snapshot kept)?
-- KEYS: 1 the owner's meta, 2 the checkpoint blob -> 1 or 0
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
return redis.call('EXISTS', KEYS[2])
