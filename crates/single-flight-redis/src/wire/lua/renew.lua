-- RENEW. KEYS[1]: the lease. ARGV[1]: our token, ARGV[2]: the lease in ms.
-- Extends the lease only while it holds our token: answers 1, else 0.
if holder(KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
