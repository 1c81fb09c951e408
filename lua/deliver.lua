-- deliver.lua: an event reached a run that waits for it: record it as the wait step's result and
-- queue the run (or, if the run is still running and about to suspend, let suspend.lua see the
-- step done and carry on). Also used for a child run's end (worker/invoke.c).
-- KEYS: 1-14 fixed, 15 run hash, 16 steps hash
-- ARGV: 1 run id, 2 step name, 3 step record to store (msgpack, status done, with the payload),
--       4 (optional) when the event happened, Redis ms: the event log entry's time, or the
--       child's end (absent or empty: now)
-- Returns 1 when delivered, 0 when the run no longer waits on that step (already delivered,
-- timed out, finished, gone) or the event came at or after the wait's deadline (the `u` of its
-- `waiting` record, Redis time): a late event does not satisfy a wait, and the run's timer
-- (suspend.lua put it in the delayed zset) makes it time out.
local bad = check_fixed_keys()
if bad then return bad end
local h, steps, id, step = KEYS[WF_NFIXED + 1], KEYS[WF_NFIXED + 2], ARGV[1], ARGV[2]
local st = redis.call('HGET', h, 'state')
if not st or WF_FINAL[st] then return 0 end
local cur = redis.call('HGET', steps, step)
if cur then
    if step_status(cur) ~= 'waiting' then return 0 end
    -- A waiting record carries no result, so it decodes; its `u` is the deadline (0: none).
    local ok, rec = pcall(cmsgpack.unpack, cur)
    local u = ok and type(rec) == 'table' and tonumber(rec.u) or 0
    local at = tonumber(ARGV[4] or '') or now_ms()
    if u > 0 and at >= u then return 0 end
elseif st ~= 'running' then
    return 0
end
redis.call('HSET', steps, step, ARGV[3])
if st == 'waiting' and redis.call('HGET', h, 'step') == step then
    local now = now_ms()
    redis.call('ZREM', KEYS[2], id)
    set_state(h, id, 'waiting', 'queued', now)
    redis.call('HDEL', h, 'wait_reason', 'wake_at')
    local g = redis.call('HMGET', h, 'attempt', 'pri')
    push_ready(h, id, g[1], g[2])
end
return 1
