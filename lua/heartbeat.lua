-- heartbeat.lua: extend the leases of the runs a worker holds.
-- KEYS: 1-12 fixed, then one run hash per run (in ARGV order)
-- ARGV: 1 lease ms, then pairs (run id, lease token)
-- Returns the ids of the runs the caller no longer holds (stopped, timed out, or reclaimed after
-- a missed heartbeat); the worker cancels those handlers.
local lease_ms = tonumber(ARGV[1])
local now = now_ms()
local lost = {}
local i = 1
while ARGV[2 * i] do
    local id, token = ARGV[2 * i], ARGV[2 * i + 1]
    local f = redis.call('HMGET', KEYS[WF_NFIXED + i], 'state', 'lease')
    if f[1] == 'running' and f[2] == token then
        redis.call('ZADD', KEYS[3], now + lease_ms, id)
    else
        lost[#lost + 1] = id
    end
    i = i + 1
end
return lost
