-- RELEASE, when the work has ended. KEYS[1]: the lease. ARGV[1]: our token.
-- Answers -1 if the lease is not ours any more. Otherwise the number of registered waiting
-- processes: 0 deletes the lease (the flight is over, nothing else to write); more keeps it
-- until FINISH leaves the value for them.
if holder(KEYS[1]) ~= ARGV[1] then return -1 end
local count = waiters(KEYS[1])
if count == 0 then redis.call('DEL', KEYS[1]) end
return count
