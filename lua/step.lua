-- step.lua: record finished (or failed) steps of running runs, each atomically with its lease
-- check. Any number of records of runs of one workflow go in one call (the worker sends the step
-- records of one loop turn together, worker/batch_step.c), so the call's fixed price and the clock
-- are paid once per batch.
-- KEYS: 1-14 fixed, then per record its run's hash and steps hash (15, 16 for the first)
-- ARGV: per record 5 values: run id, lease token, step name, step record (msgpack map, see
--       core/steprec.c), lost flag: '1' when the record counts the executions lost before it, so
--       the count is cleared (lib_history.lua WF_LOST_FIELD), anything else (or nothing, for the
--       last record) leaves it
-- Returns for one record 'OK', or an error STALE / NOTFOUND (a worker that lost the run records
-- nothing); for several records an array of those, one per record, in order: a stale record
-- leaves the others recorded.
-- It writes no fixed key, so the clobbered-key guard (12 TYPE calls, a third of a step's cost)
-- has nothing to protect here: a clobbered run or steps hash fails the first read or write of its
-- record (WRONGTYPE, for that record alone: redis.pcall), before anything of it changed.
local n = (#KEYS - WF_NFIXED) / 2
-- A string: Lua formats a number argument with printf on every redis.call (claim.lua).
local now = tostring(now_ms())
local out = {}
for i = 1, n do
    local h, steps, a = KEYS[WF_NFIXED + 2 * i - 1], KEYS[WF_NFIXED + 2 * i], 5 * (i - 1)
    local name = ARGV[a + 3]
    local f = redis.pcall('HMGET', h, 'state', 'lease')
    local e = f.err and f or lease_reply(ARGV[a + 1], f, ARGV[a + 2])
    if not e then
        local w = redis.pcall('HSET', steps, name, ARGV[a + 4])
        if type(w) == 'table' and w.err then e = w end
    end
    if e then
        out[i] = e
    else
        clear_lost(steps, ARGV[a + 5])
        redis.call('HSET', h, 'step', name, 'updated_at', now)
        out[i] = redis.status_reply('OK')
    end
end
if n == 1 then return out[1] end
return out
