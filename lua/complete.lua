-- complete.lua: handlers returned: record their outputs and finish their runs as completed. Any
-- number of runs of one workflow go in one call (the worker sends the results of one loop turn
-- together), so the fixed-key check, the clock and the index pruning are paid once per batch.
-- KEYS: 1-14 fixed, then per run its hash and its steps hash, then optionally P:{W}:outbox (with
--       ARGV notify, lib_finish.lua outbox_add) and P:{W}:parents (a child run's end is recorded
--       there for its parent, lib_finish.lua parent_add)
-- ARGV: per run (run id, lease token, output msgpack), then retention ms (unless the workflow's
--       own: P:{W}:keep, lib_finish.lua keep_policy, which may also keep the last N or none), then
--       optionally notify ('1' / 'auto')
-- The runs completed are counted in P:{W}:hist:c:HOUR (lib_history.lua hist_add).
-- Returns for one run 'OK', or an error STALE (the caller no longer holds the run: its result is
-- dropped) / NOTFOUND; for several runs an array of those, one per run, in order.
-- The fixed keys it writes: the leases and the completed index (schema 2 indexes no running run).
local bad = check_fixed_keys({3, 9})
if bad then return bad end
local n = math.floor((#ARGV - 1) / 3)
local notify = ARGV[3 * n + 2]
-- The workflow's retention of completed runs, else the caller's (lib_finish.lua keep_policy).
local keep = keep_policy('c', ARGV[3 * n + 1])
local retention = keep.ms
local outbox, parents = KEYS[WF_NFIXED + 2 * n + 1], KEYS[WF_NFIXED + 2 * n + 2]
local told = outbox and (notify == '1' or notify == 'auto') -- its end goes to the outbox
-- A string: Lua formats a number argument with printf on every redis.call (claim.lua).
local now = tostring(now_ms())
local out, completed = {}, 0
for i = 1, n do
    local h, steps = KEYS[WF_NFIXED + 2 * i - 1], KEYS[WF_NFIXED + 2 * i]
    local id, token = ARGV[3 * i - 2], ARGV[3 * i - 1]
    local f = redis.call('HMGET', h, 'state', 'lease', 'parent', 'evn', 'wait_reason', 'wake_at',
        'entry', 'error', 'step', 'reclaims')
    local e = lease_reply(id, f, token)
    if e then
        out[i] = e
    elseif keep.none and not (f[3] and f[3] ~= '') and not told then
        -- Removed on completion, with no parent or webhook to tell: two calls, nothing kept.
        redis.call('ZREM', KEYS[3], id)
        redis.call('DEL', h, steps)
        out[i] = redis.status_reply('OK')
        completed = completed + 1
    else
        -- Which fields finish_one would delete or whose steps hash it would expire: a lean run
        -- that recorded no step has none, and saves those calls.
        local has = {wait_reason = f[5], wake_at = f[6], entry = f[7], error = f[8], step = f[9],
                     reclaims = f[10]}
        finish_one(h, steps, id, 'running', 'completed', now, retention,
            {'output', ARGV[3 * i], ev_next(h, f[4], now, 'completed')}, 'error', has)
        outbox_add(notify, outbox, h, id, 'completed', now)
        if f[3] and f[3] ~= '' then parent_add(parents, h, id, 'completed', now) end
        if keep.none then drop_ended(h, steps, id, 'completed') end
        out[i] = redis.status_reply('OK')
        completed = completed + 1
    end
end
prune_final('completed', now, retention)
trim_final('completed', keep.last)
hist_add('c', completed, tonumber(now))
if n == 1 then return out[1] end
return out
