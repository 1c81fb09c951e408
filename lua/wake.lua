-- wake.lua: runs whose timer is due (retry backoff, sleep, delayed start) become ready again.
-- KEYS: 1-14 fixed, then one run hash per candidate (in ARGV order)
-- ARGV: candidate run ids (read from the delayed zset by the caller; re-checked here)
-- Returns the number of runs made ready.
local bad = check_fixed_keys()
if bad then return bad end
local now = now_ms()
local n = 0
local i = 1
while ARGV[i] do
    local id, h = ARGV[i], KEYS[WF_NFIXED + i]
    local due = redis.call('ZSCORE', KEYS[2], id)
    if due and tonumber(due) <= now then
        redis.call('ZREM', KEYS[2], id)
        -- A clobbered run key (not a hash) is dropped from the timers, not fatal to the batch.
        local f = key_type(h) == 'hash' and redis.call('HMGET', h, 'state', 'attempt', 'pri') or {}
        if f[1] == 'waiting' then
            set_state(h, id, 'waiting', 'queued', now)
            redis.call('HDEL', h, 'wait_reason', 'wake_at')
            push_ready(h, id, f[2], f[3])
            n = n + 1
        end
    end
    i = i + 1
end
return n
