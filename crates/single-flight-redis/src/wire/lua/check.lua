-- CHECK, by a waiting process already listening on the flight's channel.
-- KEYS[1]: the lease, KEYS[2]: the awaited flight's result. ARGV[1]: the awaited token.
-- Answers {envelope} if the awaited flight left one; {} if nobody holds the lease; the pttl
-- (an integer) if the awaited flight still holds it; {holder, pttl} if another flight holds
-- it now, after registering with that one as acquire does.
local result = redis.call('GET', KEYS[2])
if result then return {result} end
local current = holder(KEYS[1])
if not current then return {} end
local pttl = redis.call('PTTL', KEYS[1])
if current == ARGV[1] then return pttl end
register(KEYS[1])
return {current, pttl}
