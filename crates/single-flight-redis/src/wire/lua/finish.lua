-- FINISH, when processes wait. KEYS[1]: the lease, KEYS[2]: our result, KEYS[3]: the
-- flight's channel. ARGV[1]: our token, ARGV[2]: the envelope, ARGV[3]: the result lifetime
-- in ms, ARGV[4]: PUBLISH, or SPUBLISH in a cluster.
-- Leaves the envelope (for a waiter that checks before the message comes), deletes the lease
-- only while it is ours, and sends `token|envelope` to the processes listening. Answers 1 if
-- the lease was still ours.
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
local held = holder(KEYS[1]) == ARGV[1]
if held then redis.call('DEL', KEYS[1]) end
redis.call(ARGV[4], KEYS[3], ARGV[1] .. '|' .. ARGV[2])
if held then return 1 end
return 0
