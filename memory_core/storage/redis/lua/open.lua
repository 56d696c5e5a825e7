-- ARGV: principal, lease_ms
refuse_if_full()
redis.call('DEL', VARS, EXP, PAD, CLOSED)
redis.call('HSET', META, 'p', ARGV[1], 'l', ARGV[2], 'b', 0)
redis.call('PEXPIRE', META, tonumber(ARGV[2]))
return 1
