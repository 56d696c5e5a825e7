-- -> 1 if the session was closed on purpose within its last lease (tombstone), else 0
return redis.call('EXISTS', CLOSED)
