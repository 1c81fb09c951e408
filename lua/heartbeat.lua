-- heartbeat.lua: extend the leases of the runs a worker holds.
-- KEYS: 1-14 fixed, then one run hash per run (in ARGV order)
-- ARGV: 1 lease ms, then pairs (run id, lease token)
-- Returns one {run id, lease token} pair per run the caller no longer holds under that token
-- (stopped, timed out, reclaimed after a missed heartbeat, or whose key is no longer a hash); the
-- worker cancels those handlers. The token is part of the answer because one worker can hold the
-- same run twice for a moment (an old attempt whose handler has not returned yet, and a new claim
-- after pause/resume or restart): only the attempt with the stale token is lost.
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
        lost[#lost + 1] = {id, token}
    end
    i = i + 1
end
return lost
