-- admit.lua: runs held back by a flow limit (claim.lua parks them in P:{W}:held) go back to the
-- queue, oldest first, as far as the limits allow now.
-- KEYS: 1-14 fixed, 15 P:{W}:limits, 16 P:{W}:flow, 17 P:{W}:held, 18 P:{W}:rate, then one run
--       hash per candidate (in ARGV order)
-- ARGV: candidate run ids, oldest first (read from the held zset by the caller; re-checked here)
-- Returns the number of runs re-queued. A candidate no longer held (stopped, paused, resumed) is
-- dropped from the held zset; one that still may not start gets its wait_reason refreshed.
-- Runs re-queued here are counted as running for the rest of the call; claim.lua checks the
-- limits again when a worker claims them, so a race with new runs only holds a run back again.
local bad = check_fixed_keys() or flow_check_keys(KEYS[WF_NFIXED + 1], KEYS[WF_NFIXED + 2],
    KEYS[WF_NFIXED + 3], KEYS[WF_NFIXED + 4])
if bad then return bad end
local lim = flow_limits(KEYS[WF_NFIXED + 1])
local flow, held, rate = KEYS[WF_NFIXED + 2], KEYS[WF_NFIXED + 3], KEYS[WF_NFIXED + 4]
local now = now_ms()
local n, by_key = 0, {}
local i = 1
while ARGV[i] do
    local id, h = ARGV[i], KEYS[WF_NFIXED + 4 + i]
    local f = key_type(h) == 'hash' and redis.call('HMGET', h, 'state', 'held', 'attempt', 'input',
        'pri')
        or {}
    if f[1] ~= 'waiting' or f[2] ~= '1' then
        redis.call('ZREM', held, id)
    else
        local key = lim and flow_key(lim, f[4])
        local why = lim and flow_refuse(lim, flow, key, n, key and by_key[key] or 0, rate, now)
        if why then
            redis.call('HSET', h, 'wait_reason', why)
            -- Over the global limit (or the workflow's rate) nobody after this one may start
            -- either.
            if string.sub(why, 1, 11) == 'concurrency' or
                (string.sub(why, 1, 4) == 'rate' and not lim.rate_per_key) then
                break
            end
        else
            set_state(h, id, 'waiting', 'queued', now)
            redis.call('HDEL', h, 'wait_reason', 'held')
            push_ready(h, id, f[3], f[5])
            redis.call('ZREM', held, id)
            n = n + 1
            if key then by_key[key] = (by_key[key] or 0) + 1 end
        end
    end
    i = i + 1
end
return n
