-- heartbeat.lua: extend the leases of the runs a worker holds.
-- KEYS: 1-12 fixed, then one run hash per run (in ARGV order)
-- ARGV: 1 lease ms, then pairs (run id, lease token)
-- Returns the ids of the runs the caller no longer holds (stopped, timed out, or reclaimed after
-- a missed heartbeat, or whose key is no longer a hash); the worker cancels those handlers.
local lease_ms = tonumber(ARGV[1])
local now = now_ms()
local lost = {}
local i = 1
while ARGV[2 * i] do
    local id, token = ARGV[2 * i], ARGV[2 * i + 1]
    local h = KEYS[WF_NFIXED + i]
    -- A clobbered run key (not a hash) is reported lost instead of failing every heartbeat.
    local f = key_type(h) == 'hash' and redis.call('HMGET', h, 'state', 'lease') or {}
    if f[1] == 'running' and f[2] == token then
        redis.call('ZADD', KEYS[3], now + lease_ms, id)
    else
        lost[#lost + 1] = id
    end
    i = i + 1
end
return lost
