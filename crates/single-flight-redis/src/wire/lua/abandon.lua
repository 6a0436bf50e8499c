-- ABANDON, when every caller of the owner's process left. KEYS[1]: the lease, KEYS[2]: the
-- flight's channel. ARGV[1]: our token, ARGV[2]: PUBLISH or SPUBLISH.
-- Deletes the lease only while it is ours and, if processes wait, sends `token|` (no
-- envelope) so that one of them takes over at once. Answers 1 if the lease was ours.
if holder(KEYS[1]) ~= ARGV[1] then return 0 end
local count = waiters(KEYS[1])
redis.call('DEL', KEYS[1])
if count > 0 then redis.call(ARGV[2], KEYS[2], ARGV[1] .. '|') end
return 1
