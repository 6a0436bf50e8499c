-- PROBE, once at connect: which commands of the other scripts would Redis refuse this user
-- on the namespace's names? KEYS[1]: a lease name, KEYS[2]: a result name (of a tag no flight
-- has). ARGV[1]: a channel of the namespace, ARGV[2]: PUBLISH or SPUBLISH.
-- Writes nothing: `redis.acl_check_cmd` (Redis 7+) only asks. Answers the refused commands
-- (empty if none, or on a server too old to ask: there a refusal shows at first use).
if not redis.acl_check_cmd then return {} end
local denied = {}
local function check(...)
  if not redis.acl_check_cmd(...) then table.insert(denied, (...)) end
end
check('TYPE', KEYS[1])
check('HGET', KEYS[1], 't')
check('HSET', KEYS[1], 't', 'x')
check('HINCRBY', KEYS[1], 'w', '1')
check('PEXPIRE', KEYS[1], '1')
check('PTTL', KEYS[1])
check('DEL', KEYS[1])
check('GET', KEYS[2])
check('SET', KEYS[2], 'x', 'PX', '1')
check(ARGV[2], ARGV[1], 'x')
return denied
