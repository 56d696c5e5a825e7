-- ARGV: principal, lease_ms, keep ('1': a live session with this id stays as it is)
if ARGV[3] == '1' and redis.call('EXISTS', META) == 1 then
  local s = session(ARGV[1])
  if not s then return redis.error_reply(ERR_NO_SESSION) end
  refresh_read(s.lease)
  return 0
end
refuse_if_full()
redis.call('DEL', VARS, EXP, PAD, CLOSED)
redis.call('HSET', META, 'p', ARGV[1], 'l', ARGV[2], 'b', 0)
redis.call('PEXPIRE', META, tonumber(ARGV[2]))
mark_exp()
redis.call('PEXPIRE', EXP, tonumber(ARGV[2]))
return 1
