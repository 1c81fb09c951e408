-- fire.lua: one firing of a schedule: start its run and move its next fire time, atomically in
-- the workflow's slot. Lua never reads the spec: the worker computed the next time in C.
-- KEYS: 1-14 fixed, 15 P:{W}:schedules (hash id -> msgpack record), 16 P:{W}:schedules:due
--       (zset id -> next_at), 17 the run hash of ARGV[5] (any key of the slot when ARGV[5] is "")
-- ARGV: 1 schedule id, 2 the next_at the caller saw due (ms), 3 the spec the caller planned with,
--       4 the new next_at (ms; -1: the schedule never fires again and is removed), 5 the run id to
--       start ("W:sched-<id>-<ARGV[2]>"), or "" when this firing is skipped (catch-up "none"),
--       6 workflow name
-- Compare-and-set: only a caller that saw the schedule's current next_at and spec moves it, and
-- only once the time has come by Redis's clock; the run id is derived from the firing, so a
-- duplicate can never start a second run.
-- Returns {1, run id, state} when the run was started ({1, run id, 'exists'} if it already was),
-- {0, 'skipped'} when the firing was skipped, {-1, 'moved', next_at} when another caller handled
-- it (or the schedule was replaced), {-1, 'paused'} when it was paused (wf_schedule_pause),
-- {-1, 'gone'} when it was removed, {-1, 'early', next_at}
-- when it is not due yet, {-1, 'unreadable'} when the record does not decode (it is taken off the
-- due set and left in the hash for an operator).
local bad = check_fixed_keys()
if bad then return bad end
local sched, due, id = KEYS[WF_NFIXED + 1], KEYS[WF_NFIXED + 2], ARGV[1]
local seen, spec, new_next, run_id = tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4]), ARGV[5]
local raw = redis.call('HGET', sched, id)
if not raw then
    redis.call('ZREM', due, id)
    return {-1, 'gone'}
end
local ok, rec = pcall(cmsgpack.unpack, raw)
if not ok or type(rec) ~= 'table' then
    -- Not a record wf wrote: off the due set (it would fail every tick); the hash keeps it.
    redis.call('ZREM', due, id)
    return {-1, 'unreadable'}
end
if tonumber(rec.next_at) ~= seen or rec.spec ~= spec then
    return {-1, 'moved', tostring(rec.next_at)}
end
-- Paused since the caller read it (schedule_ctl.lua took it off the due set): no firing.
if rec.paused then return {-1, 'paused'} end
local now = now_ms()
if seen > now then return {-1, 'early', tostring(seen)} end

local out = {0, 'skipped'}
if run_id ~= '' then
    out = {1, run_id, sched_start(KEYS[WF_NFIXED + 3], run_id, ARGV[6], rec, id, seen, now)}
end
rec.last_at = seen
if new_next < 0 then
    redis.call('HDEL', sched, id)
    redis.call('ZREM', due, id)
else
    rec.next_at = new_next
    redis.call('HSET', sched, id, cmsgpack.pack(rec))
    redis.call('ZADD', due, new_next, id)
end
return out
