-- Prepended to every script. Our leases are hashes {t = the owner's token, w = how many
-- waiting processes registered}. A lease key of another type was written by something else:
-- it counts as a holder (`holder` answers its value, or '?') that never publishes an end.
local function holder(lease)
  local kind = redis.call('TYPE', lease).ok
  if kind == 'none' then return false end
  if kind == 'hash' then return redis.call('HGET', lease, 't') or '?' end
  if kind == 'string' then return redis.call('GET', lease) end
  return '?'
end

-- Registers one more waiting process with the lease's holder, so that its release knows that
-- someone waits (a foreign lease has no count: nothing to register with).
local function register(lease)
  if redis.call('TYPE', lease).ok == 'hash' then redis.call('HINCRBY', lease, 'w', 1) end
end

-- The number of waiting processes registered with our lease.
local function waiters(lease)
  return tonumber(redis.call('HGET', lease, 'w') or '0')
end
