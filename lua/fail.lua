-- fail.lua: a handler failed: schedule a retry (waiting, reason "retry") or fail the run.
-- KEYS: 1-14 fixed, 15 run hash, 16 steps hash, [17 P:{W}:outbox, only with ARGV 11],
--       [18 P:{W}:parents: a child run's final end is recorded there, lib_finish.lua parent_add]
-- ARGV: 1 run id, 2 lease token, 3 error text, 4 fatal (1: no retry), 5 max attempts,
--       6 backoff ms (doubled per attempt), 7 max backoff ms, 8 retry-after ms (-1: use backoff),
--       9 retention ms (unless the workflow's own, lib_finish.lua keep_policy), 10 final state
--       for a fatal end ('failed' or 'terminated'), [11 notify: '1' / 'auto' records a final end
--       in the outbox KEYS[17] (lib_finish.lua outbox_add); a retry is not an end and records
--       nothing]
-- A final end (not a retry) is counted in P:{W}:hist:f:HOUR (lib_history.lua hist_add).
-- Returns {state, wake_at}: 'waiting' with the retry time, or the final state with 0.
local h, steps, id = KEYS[WF_NFIXED + 1], KEYS[WF_NFIXED + 2], ARGV[1]
local e = check_lease(h, id, ARGV[2], WF_BASE_FIXED) -- a retry waits: wake.lua queues it
if e then return e end
local now = now_ms()
local a = redis.call('HMGET', h, 'attempt', 'evn')
local attempt = tonumber(a[1]) or 1
local fatal, max_attempts = ARGV[4] == '1', tonumber(ARGV[5])
redis.call('ZREM', KEYS[3], id)
if fatal or attempt >= max_attempts then
    local to = ARGV[10]
    if to ~= 'terminated' then to = 'failed' end
    redis.call('HSET', h, 'error', ARGV[3],
        ev_fields(h, a[2], now, to, 'attempt ' .. attempt .. ': ' .. ARGV[3]))
    local drop = finish(h, steps, id, 'running', to, now, keep_policy('f', ARGV[9]))
    hist_add('f', 1, now)
    outbox_add(ARGV[11], KEYS[WF_NFIXED + 3], h, id, to, now)
    parent_add(KEYS[WF_NFIXED + 4], h, id, to, now)
    if drop then drop_ended(h, steps, id, to) end
    return {to, 0}
end
local delay = tonumber(ARGV[8])
if delay < 0 then
    delay = tonumber(ARGV[6]) * (2 ^ (attempt - 1))
    local cap = tonumber(ARGV[7])
    if delay > cap then delay = cap end
end
delay = math.floor(delay)
set_state(h, id, 'running', 'waiting', now)
redis.call('HSET', h, 'attempt', attempt + 1, 'wait_reason', 'retry', 'wake_at', now + delay,
    'error', ARGV[3], ev_fields(h, a[2], now, 'retried', 'attempt ' .. attempt .. ': ' ..
    ARGV[3] .. '; attempt ' .. (attempt + 1) .. ' at ' .. (now + delay)))
redis.call('ZADD', KEYS[2], now + delay, id)
return {'waiting', now + delay}
