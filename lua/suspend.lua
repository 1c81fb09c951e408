-- suspend.lua: a running run waits (durable sleep, event wait, step retry): it gives back its
-- lease and worker slot and becomes `waiting`; wake.lua queues it again at wake_at.
-- KEYS: 1-14 fixed, 15 run hash, 16 steps hash
-- ARGV: 1 run id, 2 lease token, 3 step name, 4 step record (msgpack), 5 wake_at ms (0: no
--       timer, e.g. an event wait without timeout), 6 wait reason (shown by `wf status`),
--       7 (optional) '1': the timer is a deadline the caller wants decided by Redis time: if
--       wake_at has already come, do not wait and answer DUE, 8 (optional, with 7) the step
--       record to store when DUE (a sleep's `done` record), 9 (optional) '1': the record(s)
--       count the executions lost before; clear the count (lib_history.lua WF_LOST_FIELD)
-- Returns 'OK' (now waiting) or 'RESUME' when the step was completed meanwhile (an event delivered
-- between the wait's registration and this call): the handler goes on without waiting; or 'DUE'
-- (with ARGV 7) when Redis time reached wake_at: the run stays running, nothing was written but
-- ARGV 8's record, and the caller handles its deadline now.
-- Errors: STALE / NOTFOUND.
local h, steps, id = KEYS[WF_NFIXED + 1], KEYS[WF_NFIXED + 2], ARGV[1]
-- The fixed keys it writes: delayed, leases, and the running and waiting indexes.
local bad = check_fixed_keys({2, 3, 6, 8})
if bad then return bad end
local e = lease_reply(id, redis.call('HMGET', h, 'state', 'lease'), ARGV[2])
if e then return e end
if step_status(redis.call('HGET', steps, ARGV[3])) == 'done' then return 'RESUME' end
local now = now_ms()
local wake = tonumber(ARGV[5]) or 0
if ARGV[7] == '1' and wake > 0 and now >= wake then
    if ARGV[8] and ARGV[8] ~= '' then
        redis.call('HSET', steps, ARGV[3], ARGV[8])
        redis.call('HSET', h, 'step', ARGV[3], 'updated_at', now)
        clear_lost(steps, ARGV[9])
    end
    return 'DUE'
end
redis.call('HSET', steps, ARGV[3], ARGV[4])
clear_lost(steps, ARGV[9])
redis.call('ZREM', KEYS[3], id)
redis.call('HINCRBY', h, 'lease', 1)
set_state(h, id, 'running', 'waiting', now)
redis.call('HSET', h, 'wait_reason', ARGV[6], 'step', ARGV[3])
if wake > 0 then
    redis.call('HSET', h, 'wake_at', wake)
    redis.call('ZADD', KEYS[2], wake, id)
else
    redis.call('HDEL', h, 'wake_at')
end
return 'OK'
