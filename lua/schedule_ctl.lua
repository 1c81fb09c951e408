-- schedule_ctl.lua: an operator's hand on one schedule: pause it, resume it, or trigger a run now
-- (wf_schedule_pause / _resume / _trigger), atomically with the firings (fire.lua), which rewrite
-- the same record.
-- KEYS: 1-14 fixed, 15 P:{W}:schedules (hash id -> msgpack record), 16 P:{W}:schedules:due
--       (zset id -> next_at), 17 with 'trigger' the run hash of ARGV[4]
-- ARGV: 1 schedule id, 2 action: 'pause', 'resume' or 'trigger', then
--       resume: 3 the spec the caller planned with, 4 the new next_at (ms), computed by the caller
--       from the spec and Redis time: the first firing after now, so missed ones are skipped
--       trigger: 3 the spec the caller read, 4 the run id to start ("W:sched-<id>-now-<ms>"),
--       5 workflow name
-- A paused record carries `paused` (the Redis ms of the pause) and is not in the due set, so no
-- worker even looks at it; its next_at stays what it was until the resume replaces it.
-- Returns 1 when the action changed something (pause of a running schedule, resume of a paused
-- one), 0 when there was nothing to do; for 'trigger' {run id, 'queued' | 'exists'}. Errors:
-- NOTFOUND (no such schedule, or it was replaced: the spec differs), BADSTATE (unreadable record).
local bad = check_fixed_keys()
if bad then return bad end
local sched, due, id, action = KEYS[WF_NFIXED + 1], KEYS[WF_NFIXED + 2], ARGV[1], ARGV[2]
local raw = redis.call('HGET', sched, id)
if not raw then return redis.error_reply('NOTFOUND schedule ' .. id .. ' does not exist') end
local ok, rec = pcall(cmsgpack.unpack, raw)
if not ok or type(rec) ~= 'table' then
    return redis.error_reply('BADSTATE schedule ' .. id .. ' has an unreadable record')
end
if action ~= 'pause' and rec.spec ~= ARGV[3] then
    return redis.error_reply('NOTFOUND schedule ' .. id .. ' was replaced meanwhile')
end
local now = now_ms()
local out = 0
if action == 'pause' then
    if not rec.paused then
        rec.paused = now
        redis.call('ZREM', due, id)
        out = 1
    end
elseif action == 'resume' then
    if rec.paused then
        rec.paused = nil
        rec.next_at = tonumber(ARGV[4])
        redis.call('ZADD', due, rec.next_at, id)
        out = 1
    end
elseif action == 'trigger' then
    -- A run now, as a firing would start it; the next firing does not move.
    out = {ARGV[4], sched_start(KEYS[WF_NFIXED + 3], ARGV[4], ARGV[5], rec, id, now, now)}
else
    return redis.error_reply('ERR schedule_ctl.lua: unknown action ' .. tostring(action))
end
redis.call('HSET', sched, id, cmsgpack.pack(rec))
return out
