-- ACQUIRE. KEYS[1]: the lease. ARGV[1]: our token, ARGV[2]: the lease in ms.
-- Answers 1 when we hold the lease now. Otherwise registers us as a waiting process of its
-- holder (the holder's release then knows to leave its value) and answers the holder's token
-- (the waiter's next CHECK tells how long the lease has left).
local current = holder(KEYS[1])
if current then
  register(KEYS[1])
  return current
end
redis.call('HSET', KEYS[1], 't', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
