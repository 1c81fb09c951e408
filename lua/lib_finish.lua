-- lib_finish.lua: part of lib.lua (see there; cmake/embed_lua.cmake adds it after lib_queue.lua):
-- ending runs. A run's end in a final state, kept as long as the caller's or the workflow's
-- retention says (finish_one, finish, keep_policy), the final indexes held to it (prune_final,
-- trim_final, drop_ended), and the end told in the same atomic call to the outbox (webhooks) and
-- to a parent run (outbox_add, parent_add).

-- Ends run `id` in final state `to` and keeps it `retention` ms, in as few calls as it takes
-- (each redis.call costs about as much as the work it does): one HSET with the state, the times
-- and the pairs of the flat list `set`, one HDEL of the waiting fields and `del` (a field name,
-- or nil). The final index is not pruned here: prune_final does it once per script.
-- `has`, when the caller read them (complete.lua, the hot path), says which of the fields
-- wait_reason, wake_at, entry, `del`, step and reclaims the hash holds: then only those are
-- deleted (a lean run has none: no HDEL at all), and the steps hash, which exists only for a run
-- that recorded a step or was reclaimed, gets its PEXPIRE only then.
local function finish_one(h, steps, id, from, to, now, retention, set, del, has)
    if from and WF_STATE_KEY[from] then redis.call('ZREM', WF_STATE_KEY[from], id) end
    redis.call('ZADD', WF_STATE_KEY[to], now, id)
    if set then
        redis.call('HSET', h, 'state', to, 'updated_at', now, 'finished_at', now, unpack(set))
    else
        redis.call('HSET', h, 'state', to, 'updated_at', now, 'finished_at', now)
    end
    if has then
        local gone = {}
        for _, k in ipairs({'wait_reason', 'wake_at', 'entry', del}) do
            if has[k] then gone[#gone + 1] = k end
        end
        if #gone > 0 then redis.call('HDEL', h, unpack(gone)) end
    elseif del then
        redis.call('HDEL', h, 'wait_reason', 'wake_at', 'entry', del)
    else
        redis.call('HDEL', h, 'wait_reason', 'wake_at', 'entry')
    end
    redis.call('ZREM', KEYS[3], id)
    -- Only a run that was not running can have a timer (sleeps, retries, delayed starts).
    if from ~= 'running' then redis.call('ZREM', KEYS[2], id) end
    if retention > 0 then
        redis.call('PEXPIRE', h, retention)
        if steps and (not has or has.step or has.reclaims) then
            redis.call('PEXPIRE', steps, retention)
        end
    end
end

-- Drops from final index `to` the runs that ended more than `retention` ms ago (their hashes
-- have expired).
local function prune_final(to, now, retention)
    if retention > 0 then
        redis.call('ZREMRANGEBYSCORE', WF_STATE_KEY[to], '-inf', now - retention)
    end
end

-- ---- Retention per workflow (wf_workflow_retention_set) --------------------------------------
-- The hash P:{W}:keep: for completed runs (kind 'c') and for the other final states (kind 'f':
-- failed, cancelled, terminated), `KIND_ms` keeps each run that long (instead of the caller's
-- connection-wide retention), `KIND_last` keeps at most that many of the newest in each final
-- index, `KIND_none` '1' removes each run as it ends (remove-on-complete: only the per-minute
-- history counts it). Named after KEYS[1] like the history's keys (same hash tag, same slot),
-- and read once per script call, which the script keeps in a local (no state between calls).
-- Returns {ms, last, none}.
local function keep_policy(kind, default_ms)
    local q = KEYS[1]
    local f = redis.call('HMGET', string.sub(q, 1, #q - 5) .. 'keep', kind .. '_ms',
        kind .. '_last', kind .. '_none')
    return {ms = tonumber(f[1]) or tonumber(default_ms) or 0, last = tonumber(f[2]) or 0,
            none = f[3] == '1'}
end

-- Removes ended run `id` (hash `h`, steps hash `steps`) that finish_one recorded in final state
-- `to`: what keep 'none' asks, once its end has been told (outbox, parent).
local function drop_ended(h, steps, id, to)
    redis.call('ZREM', WF_STATE_KEY[to], id)
    redis.call('DEL', h, steps)
end

-- Keeps the newest `last` runs of final index `to` (0: no limit), deleting the others with their
-- steps; at most 1000 a call, so lowering the limit a lot is caught up over a few calls.
local function trim_final(to, last)
    if last <= 0 then return end
    local n = redis.call('ZCARD', WF_STATE_KEY[to]) - last
    if n <= 0 then return end
    if n > 1000 then n = 1000 end
    local q = KEYS[1]
    local run = string.sub(q, 1, #q - 5) .. 'run:'
    for _, id in ipairs(redis.call('ZRANGE', WF_STATE_KEY[to], 0, n - 1)) do
        redis.call('DEL', run .. id, run .. id .. ':steps')
    end
    redis.call('ZREMRANGEBYRANK', WF_STATE_KEY[to], 0, n - 1)
end

-- Ends run `id` in final state `to`, keeps it as `keep` (keep_policy) says, prunes the final
-- index. Returns true when the run is to be removed once its end is told (drop_ended).
local function finish(h, steps, id, from, to, now, keep)
    finish_one(h, steps, id, from, to, now, keep.ms)
    prune_final(to, now, keep.ms)
    trim_final(to, keep.last)
    return keep.none
end

-- Records that run `id` ended in `state` in the workflow's outbox stream `outbox` (P:{W}:outbox,
-- consumer group "webhooks"), in the script that ends the run, so a crash between the end and the
-- delivery of its notification loses nothing (worker/webhook.c delivers). `mode` is the optional
-- trailing "notify" ARGV of complete/fail/stop: '1' always, 'auto' only when the outbox exists (a
-- worker with webhooks created its group), anything else (or absent) never. The stream keeps the
-- newest ~100,000 entries if nobody drains it.
-- 'auto' asks Redis once per script call (WF_OUTBOX_EXISTS, lib.lua), not once per run.
local function outbox_add(mode, outbox, h, id, state, now)
    if not outbox or (mode ~= '1' and mode ~= 'auto') then return end
    if mode == 'auto' then
        if WF_OUTBOX_EXISTS[outbox] == nil then
            WF_OUTBOX_EXISTS[outbox] = redis.call('EXISTS', outbox) == 1
        end
        if not WF_OUTBOX_EXISTS[outbox] then return end
    end
    local wf = redis.call('HGET', h, 'workflow') or ''
    redis.call('XADD', outbox, 'MAXLEN', '~', 100000, '*', 'id', id, 'state', state,
        'workflow', wf, 'at', now)
end

-- Child runs (wf_step_invoke, worker/invoke.c): a run started by a parent's step carries the
-- fields `parent` (the parent's run id) and `parent_step` (enqueue.lua). The script that ends such
-- a run records the end in the stream `stream` (P:{W}:parents of the child's workflow W, consumer
-- group "parents"), in the same atomic call, with the child's output and error: any worker of W
-- then delivers it to the parent (deliver.lua on the parent's own keys) at least once, even if the
-- worker that ended the child dies at once. Nothing is written for a run without a parent, or when
-- the caller passed no stream (older callers). The stream keeps the newest ~100,000 entries.
local function parent_add(stream, h, id, state, now)
    if not stream or stream == '' then return end
    local f = redis.call('HMGET', h, 'parent', 'parent_step', 'output', 'error')
    if not f[1] or f[1] == '' then return end
    redis.call('XADD', stream, 'MAXLEN', '~', 100000, '*', 'id', id, 'parent', f[1], 'step',
        f[2] or '', 'state', state, 'output', f[3] or '', 'error', f[4] or '', 'at', now)
end
