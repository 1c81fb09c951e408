-- lib.lua: helpers shared by every wf script. The build (cmake/embed_lua.cmake) makes lua/ one
-- Redis Functions library, `wf`: this file once, then each script as a function `wf_NAME`. It is
-- loaded once and serves every call, so nothing here may hold what belongs to one call: KEYS and
-- ARGV are the library's upvalues, set from each FCALL's keys and args, and what depends on them
-- or caches within a call is set by wf_call_begin (below) before each script runs.
--
-- Every script receives the workflow's fixed keys first, in this order (core/keys.c builds
-- them), then the keys of the runs it touches:
--   KEYS[1]  P:{W}:queue      stream of ready runs, consumer group "workers"
--   KEYS[2]  P:{W}:delayed    zset run id -> due time (ms): retries, sleeps, delayed starts
--   KEYS[3]  P:{W}:leases     zset run id -> lease expiry (ms) of running runs
--   KEYS[4]  P:{W}:dead       list of stream entries that were not valid run records
--   KEYS[5..12] P:{W}:state:S zset run id -> last change (ms), one per state below
--   KEYS[13] P:{W}:queue:high stream of ready runs of priority high, group "workers"
--   KEYS[14] P:{W}:queue:low  stream of ready runs of priority low, group "workers"
-- Scripts never build key names themselves, so every key they touch is declared (Redis Cluster);
-- the one exception, the per-minute counters named after Redis time, is hist_add below.
-- Time is Redis time: worker clocks may drift without harm.

local WF_NFIXED = 14
local WF_STATES = {'queued', 'running', 'paused', 'waiting', 'completed', 'failed', 'cancelled',
                   'terminated'}
-- The state indexes of schema 2: paused, waiting and the final states. A queued run is its
-- entry on a lane (the lanes' lengths count them) and a running run is its lease (KEYS[3] counts
-- and lists them), so the keys of state:queued and state:running stay declared (the fixed-key
-- order is unchanged) but schema 2 never writes them; `wf migrate` deleted what schema 1 left
-- there. Saves a ZADD and a ZREM per run on each of claim and finish, and ~100 B per queued run.
local WF_STATE_KEY = {} -- state -> its P:{W}:state:S key, KEYS[5..12] but 5 and 6 (wf_call_begin)
local WF_RUNNING -- the leases, KEYS[3]: the running runs (wf_call_begin)
local WF_FINAL = {completed = true, failed = true, cancelled = true, terminated = true}

-- Priority lanes: a run's priority is its hash field `pri`, 'high' or 'low', absent for normal
-- (so a normal run costs nothing more), and its ready entries go to that lane's stream. Workers
-- read high before normal before low (worker/claim.c). Anything else reads as normal.
local WF_LANE = {} -- high = KEYS[13], low = KEYS[14] (wf_call_begin)
local function lane_key(pri)
    return WF_LANE[pri] or KEYS[1]
end
-- The KEYS index of the lane of `pri` (for check_fixed_keys).
local function lane_index(pri)
    if pri == 'high' then return 13 end
    if pri == 'low' then return 14 end
    return 1
end

-- Lean runs (schema 2, enqueue.lua): a queued run that is only its entry on a lane, fields `c`
-- (its id's suffix, a ULID the client generated: core/runid.c) and `p` (its input). Its entry id
-- is never before the ULID's time and at most a few seconds after it (enqueue.lua lean_add), so
-- the run is found from its id alone by reading its lane from that time (lean_find).
local WF_CROCKFORD = {} -- byte -> digit, made at the first use (a library's load has no `string`)
local WF_LEAN_SPAN = 4000 -- ms after the ULID's time within which its entry is

-- The milliseconds of ULID `suffix` (its first 10 characters), or nil when it is not a ULID.
local function ulid_ms(suffix)
    if #suffix ~= 26 then return nil end
    if not WF_CROCKFORD[48] then
        for i = 1, 32 do WF_CROCKFORD[string.byte('0123456789ABCDEFGHJKMNPQRSTVWXYZ', i)] = i - 1 end
    end
    local ms = 0
    for i = 1, 10 do
        local d = WF_CROCKFORD[string.byte(suffix, i)]
        if not d then return nil end
        ms = ms * 32 + d
    end
    return ms
end

local function now_ms()
    local t = redis.call('TIME')
    return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Moves run `id` (hash `h`) from state `from` to `to`: the hash and the state indexes together
-- (queued and running have none: WF_STATE_KEY).
local function set_state(h, id, from, to, now)
    if from and WF_STATE_KEY[from] then redis.call('ZREM', WF_STATE_KEY[from], id) end
    if WF_STATE_KEY[to] then redis.call('ZADD', WF_STATE_KEY[to], now, id) end
    redis.call('HSET', h, 'state', to, 'updated_at', now)
end

-- Appends a ready entry for run `id` to the queue of its priority `pri` (the run's `pri` field,
-- nil for normal): the msgpack run record (core/record.c). Returns the entry id, which the
-- caller stores in the run hash as `entry`.
local function ready_entry(id, attempt, pri)
    local rec = cmsgpack.pack({v = 1, id = id, a = tonumber(attempt) or 1})
    return redis.call('XADD', lane_key(pri), '*', 'r', rec)
end

-- Appends a ready entry for run `id` on its lane and remembers it in the run hash, so a claim can
-- tell the current entry from a stale one. `pri` is the run's `pri` field, read by the caller
-- with the rest of the run (one call fewer than reading it here).
local function push_ready(h, id, attempt, pri)
    local entry = ready_entry(id, attempt, pri)
    redis.call('HSET', h, 'entry', entry)
    return entry
end

-- The ms of ULID `suffix` when a lean entry may be written for it now (Redis ms `now`): the
-- entry goes at that ms or later, so a client clock more than 2 s off Redis's would put entries
-- out of reach of lean_find's window (or the lane's ids in the future); nil then, or when it is
-- not a ULID: the run gets a hash instead.
local function lean_ms(suffix, now)
    local ms = ulid_ms(suffix)
    if ms and ms <= now + 2000 and ms >= now - 2000 then return ms end
    return nil
end

-- Writes lean run `suffix` (its id's suffix, a ULID of time `ms`) with `input` on `lane`: at the
-- ULID's millisecond when that is after the lane's last entry, else where Redis puts it (later
-- still). Either way at or after the ULID's time, as lean_find needs.
local function lean_add(lane, suffix, ms, input)
    local e = redis.pcall('XADD', lane, ms .. '-*', 'c', suffix, 'p', input)
    if type(e) == 'table' and e.err then redis.call('XADD', lane, '*', 'c', suffix, 'p', input) end
end

-- The lane priority (nil: normal), entry id and input of lean run `id` (WORKFLOW:ULID) while it
-- is queued, or nil. Reads each lane from the ULID's time, 100 entries at a time, until
-- WF_LEAN_SPAN after it: a few entries unless thousands of runs a second were queued then.
-- `lanes` (normal, high, low) defaults to the fixed keys' (KEYS 1, 13, 14).
local function lean_find(id, lanes)
    local suffix = string.match(id, ':(.*)$') or ''
    local ms = ulid_ms(suffix)
    if not ms then return nil end
    lanes = lanes or {KEYS[1], KEYS[13], KEYS[14]}
    for i, pri in ipairs({false, 'high', 'low'}) do
        local lane, from = lanes[i], ms .. '-0'
        while true do
            local es = redis.call('XRANGE', lane, from, (ms + WF_LEAN_SPAN) .. '-0', 'COUNT', 100)
            for _, e in ipairs(es) do
                local f = e[2]
                if f[1] == 'c' and f[2] == suffix then return pri or nil, e[1], f[4] or '' end
            end
            if #es < 100 then break end
            from = '(' .. es[#es][1]
        end
    end
    return nil
end

-- Makes the hash `h` of a lean run `id` that is still queued, so that a script acting on a run
-- (stop, pause) finds it as it finds any queued run: state queued, its input, its entry. Nothing
-- happens when the hash exists, or when no lean entry is found (then the run does not exist:
-- claimed runs have hashes).
local function lean_hash(h, id)
    if redis.call('EXISTS', h) == 1 then return end
    local pri, entry, input = lean_find(id)
    if not entry then return end
    local created = string.match(entry, '^(%d+)')
    local f = {'workflow', string.match(id, '^(.*):'), 'attempt', '1', 'created_at', created,
               'updated_at', created, 'input', input, 'entry', entry, 'state', 'queued'}
    if pri then
        f[#f + 1] = 'pri'
        f[#f + 1] = pri
    end
    redis.call('HSET', h, unpack(f))
end

-- Deletes run `id`'s current ready entry `entry` (nil: none) from the lane of `pri`.
local function drop_entry(entry, pri)
    if entry then redis.call('XDEL', lane_key(pri), entry) end
end

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

-- The type Redis reports for key `k` ('hash', 'zset', 'none', ...).
local function key_type(k)
    local t = redis.call('TYPE', k)
    return t.ok or t
end

-- Refuses to run on a clobbered fixed key (e.g. `SET P:{W}:leases x` by hand): Redis scripts are
-- not rolled back, so a WRONGTYPE error half-way through would leave a run half-moved (running
-- without a lease, never reclaimed). Checked before anything is written; returns the error reply
-- to return, or nil.
-- `only` (a list of KEYS indexes) limits the check to the keys a script writes: each TYPE is a
-- redis.call, and on the enqueue path the twelve were a fifth of the script's cost. Without it all
-- fourteen are checked; WF_BASE_FIXED is the twelve keys there were before priority lanes, for
-- the hot scripts that never queue a run nor delete an entry (complete, fail): the same checks,
-- at the same cost, as before the lanes.
local WF_FIXED_TYPES = {'stream', 'zset', 'zset', 'list', 'zset', 'zset', 'zset', 'zset', 'zset',
                        'zset', 'zset', 'zset', 'stream', 'stream'}
local WF_ALL_FIXED = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14}
local WF_BASE_FIXED = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
local function check_fixed_keys(only)
    for _, i in ipairs(only or WF_ALL_FIXED) do
        local want = WF_FIXED_TYPES[i] or 'zset'
        local t = key_type(KEYS[i])
        if t ~= want and t ~= 'none' then
            return redis.error_reply('WRONGTYPE wf key ' .. KEYS[i] .. ' holds a ' .. t ..
                ', not a ' .. want .. ' (clobbered by hand?): delete or repair it')
        end
    end
    return nil
end

-- The error reply for a caller that does not hold run `id`'s lease, given the run's fields
-- `f` = {state, lease} (HMGET), or nil when `token` is the current lease of a running run.
-- STALE maps to WF_ERR_STALE on the C side.
local function lease_reply(id, f, token)
    if not f[1] then return redis.error_reply('NOTFOUND run ' .. id .. ' does not exist') end
    if f[1] ~= 'running' or f[2] ~= token then
        return redis.error_reply('STALE run ' .. id .. ' is ' .. f[1] .. ' (lease ' ..
            tostring(f[2]) .. ', caller has ' .. token .. ')')
    end
    return nil
end

-- Checks that the caller still holds run `id`'s lease; returns the error reply to return (STALE,
-- NOTFOUND, or the WRONGTYPE one of check_fixed_keys over `only`), or nil.
local function check_lease(h, id, token, only)
    local bad = check_fixed_keys(only)
    if bad then return bad end
    return lease_reply(id, redis.call('HMGET', h, 'state', 'lease'), token)
end

-- Records that run `id` ended in `state` in the workflow's outbox stream `outbox` (P:{W}:outbox,
-- consumer group "webhooks"), in the script that ends the run, so a crash between the end and the
-- delivery of its notification loses nothing (worker/webhook.c delivers). `mode` is the optional
-- trailing "notify" ARGV of complete/fail/stop: '1' always, 'auto' only when the outbox exists (a
-- worker with webhooks created its group), anything else (or absent) never. The stream keeps the
-- newest ~100,000 entries if nobody drains it.
local WF_OUTBOX_EXISTS = {} -- 'auto' asks Redis once per script call, not once per run
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

-- ---- Per call ----------------------------------------------------------------------------------
-- Run by the library before every script (cmake/embed_lua.cmake), once KEYS and ARGV are the
-- call's: the tables above that are read from KEYS, and the caches that last one call. (Here,
-- after the last of them; every helper below reads only KEYS, ARGV and its arguments.)
local function wf_call_begin()
    for i, s in ipairs(WF_STATES) do
        if s ~= 'queued' and s ~= 'running' then WF_STATE_KEY[s] = KEYS[4 + i] end
    end
    WF_RUNNING = KEYS[3]
    WF_LANE.high, WF_LANE.low = KEYS[13], KEYS[14]
    if next(WF_OUTBOX_EXISTS) then WF_OUTBOX_EXISTS = {} end
end

-- The status `s` of step record `raw` (msgpack map, core/steprec.c), or nil. Redis's cmsgpack
-- does not decode msgpack bin values, and a record with a result carries one (`r`), so such a
-- record is read by its head, which steprec.c always writes first: fixmap, "k", kind, "s", status.
local function step_status(raw)
    if not raw then return nil end
    local ok, rec = pcall(cmsgpack.unpack, raw)
    if ok and type(rec) == 'table' then return rec.s end
    local m = string.byte(raw, 1)
    if not m or m < 0x80 or m > 0x8f or string.sub(raw, 2, 3) ~= '\161k' then return nil end
    local kl = (string.byte(raw, 4) or 0) - 0xa0
    if kl < 0 or kl > 31 then return nil end
    local p = 5 + kl
    if string.sub(raw, p, p + 1) ~= '\161s' then return nil end
    local sl = (string.byte(raw, p + 2) or 0) - 0xa0
    if sl < 0 or sl > 31 then return nil end
    return string.sub(raw, p + 3, p + 2 + sl)
end

-- The steps hash field (not a step name: those have no spaces) counting the executions of a run
-- lost with their worker (reclaim.lua) since its last step record. The worker reads it with the
-- steps hash, adds it to the attempts of the first step it records, and clears it in that call
-- (step.lua, suspend.lua `clear_lost`), so wf_step_attempt() counts a body killed mid-way.
local WF_LOST_FIELD = ' lost'
local function clear_lost(steps, flag)
    if flag == '1' then redis.call('HDEL', steps, WF_LOST_FIELD) end
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

-- ---- A run's history (wf_run_events) -----------------------------------------------------------
-- What happened to a run, recorded by the script that made it happen, in the run hash itself:
-- field `evn` counts the events, field `evN` is event N, "MS KIND[ DETAIL]" (Redis ms; KIND
-- enqueued, started, paused, resumed, stopped, retried, restarted, reclaimed, released,
-- completed, failed, terminated). Fields of the hash rather than a key of their own: each script
-- already reads the hash (it adds `evn` to its HMGET) and writes it (it adds the fields to its
-- HSET), so the history costs no Redis call on the hot path, and it lives, expires, restarts and
-- is purged with the run. One short field per event, not one growing field: a hash keeps its
-- compact listpack encoding only while every value is at most 64 bytes (hash-max-listpack-value),
-- and a single history field passed that at the third event (measured: 543 -> 1303 bytes of Redis
-- memory per finished run, and 5-10 us more Redis CPU per run in a drain). The oldest events go
-- beyond WF_EV_KEEP (one HDEL per event then).
-- The plain path writes no event: while a run's history is implicit (no `evn`), its enqueued,
-- started and final events are the hash's created_at, started_at and finished_at, and
-- wf_run_events (client/history.c) shows them from there. The first other event (a pause, stop,
-- retry, failure, reclaim, release, restart, resume, or a delayed start) makes the history
-- explicit: ev_open writes those implicit events as evN fields first, and from then on claim and
-- complete append theirs too (ev_next). So a run that is enqueued, runs once and completes costs
-- its hash no history field and its scripts no event work (measured when events were written
-- on every transition: +161 B per finished run, +65 B per queued run).
-- Returns the field/value pairs to append to the caller's HSET (last in its argument list, so all
-- four are passed): event N+1 and the new count, given `n`, the run's `evn` (nil, false: none).
local WF_EV_KEEP = 50
local function ev_open(h)
    local f = redis.call('HMGET', h, 'created_at', 'started_at', 'attempt', 'worker', 'finished_at',
        'state')
    local args, n = {}, 0
    local function add(line)
        n = n + 1
        args[#args + 1] = 'ev' .. n
        args[#args + 1] = line
    end
    if f[1] then add(f[1] .. ' enqueued') end
    if f[2] then
        add(f[2] .. ' started attempt ' .. (f[3] or '1') .. ' on ' .. string.sub(f[4] or '?', -28))
    end
    if f[5] and (f[6] == 'completed' or f[6] == 'failed' or f[6] == 'cancelled' or
        f[6] == 'terminated') then
        add(f[5] .. ' ' .. f[6])
    end
    if n > 0 then redis.call('HSET', h, 'evn', tostring(n), unpack(args)) end
    return n
end
local function ev_fields(h, n, now, kind, detail)
    if not n then n = ev_open(h) end
    n = (tonumber(n) or 0) + 1
    if n > WF_EV_KEEP then redis.call('HDEL', h, 'ev' .. (n - WF_EV_KEEP)) end
    local line = tostring(now) .. ' ' .. kind
    if detail and detail ~= '' then
        line = line .. ' ' .. string.sub((string.gsub(detail, '[\r\n]', ' ')), 1, 300)
    end
    return 'ev' .. n, line, 'evn', tostring(n)
end
-- ev_fields for the plain path's events (started, completed): nothing while the history is
-- implicit (`n`, the run's evn, is nil), so the caller's HSET gets no extra argument.
local function ev_next(h, n, now, kind, detail)
    if not n then return end
    return ev_fields(h, n, now, kind, detail)
end

-- ---- Schedules (fire.lua, schedule_ctl.lua) -----------------------------------------------------
-- Starts run `run_id` (hash `h`) of workflow `wfname` for schedule `sid`, record `rec` (decoded),
-- as enqueue.lua would, plus the schedule that started it and the firing it stands for (`seen`).
-- Counts the firing in the record (fires, last_run; the caller writes the record back). Returns
-- 'exists' when the run was already there (a repeated call), else 'queued'.
local function sched_start(h, run_id, wfname, rec, sid, seen, now)
    rec.fires = (tonumber(rec.fires) or 0) + 1
    rec.last_run = run_id
    if redis.call('HGET', h, 'state') then return 'exists' end
    redis.call('HSET', h, 'workflow', wfname, 'attempt', 1, 'created_at', now, 'reclaims', 0,
        'lease', 0, 'input', rec.payload or '', 'schedule', sid, 'scheduled_at', seen)
    set_state(h, run_id, nil, 'queued', now)
    push_ready(h, run_id, 1)
    return 'queued'
end

-- ---- Per-minute history (wf_workflow_history) -------------------------------------------------
-- Counts per workflow and minute of runs started (a run's first claim: attempt 1, never claimed
-- before), completed, and failed (ended failed or terminated; a retry is not an end), kept a day:
-- hash P:{W}:hist:KIND:HOUR, KIND s, c or f, HOUR = floor(Redis ms / 3600000), field the minute
-- of the hour (0-59), value the count. One HINCRBY per script call and kind, not per run; the
-- PEXPIRE (25 h; the documented ACL allows PEXPIRE, not EXPIRE) only when the HINCRBY created
-- the field, so about once per minute and kind.
-- The one key a script names itself: the hour is Redis time, known only inside the script. It is
-- built from KEYS[1] (P:{W}:queue), so it carries the declared keys' {W} hash tag and slot.
local function hist_add(kind, n, now)
    if n <= 0 then return end
    local q = KEYS[1]
    local k = string.sub(q, 1, #q - 5) .. 'hist:' .. kind .. ':' ..
        string.format('%d', math.floor(now / 3600000))
    local field = string.format('%d', math.floor(now / 60000) % 60)
    if redis.call('HINCRBY', k, field, n) == n then redis.call('PEXPIRE', k, 90000000) end
end

-- ---- Flow control (claim.lua, admit.lua) -------------------------------------------------------
-- A workflow's limits live in the hash P:{W}:limits (max_running; key + max_per_key; rate +
-- rate_ms + rate_per_key), set with wf_flow_set / `wf limit`. Runs over a limit are parked
-- `waiting` in the zset P:{W}:held (holding no worker slot) until admit.lua lets them go. Runs
-- running per key value are the members "KEY\tRUNID" of the zset P:{W}:flow (all score 0, read
-- by lex range); a member whose run is no longer in the running index is dropped when seen, so no
-- exit script needs to know about it.
-- The rate limit is a GCRA without burst: starts of one key (or of the workflow) are at least
-- rate_ms / rate apart, so no window of rate_ms holds more than `rate` starts. The zset
-- P:{W}:rate keeps, per key ('' for the whole workflow), the earliest time the next start is
-- allowed (its "theoretical arrival time"); members in the past mean "free now" and are pruned.

-- The limits in hash `k` as {max, field, per_key, rate, rate_ms, rate_per_key}, or nil when
-- there are none; then the hash's `paused` field (wf_workflow_pause: the Redis ms it was paused
-- at, nil when the workflow is not paused), read by the same call.
local function flow_limits(k)
    if not k then return nil end
    local f = redis.call('HMGET', k, 'max_running', 'key', 'max_per_key', 'rate', 'rate_ms',
        'rate_per_key', 'paused')
    local paused = f[7] or nil
    local lim = {max = tonumber(f[1]) or 0, field = f[2], per_key = tonumber(f[3]) or 0,
                 rate = tonumber(f[4]) or 0, rate_ms = tonumber(f[5]) or 0,
                 rate_per_key = f[6] == '1'}
    if not lim.field or lim.field == '' then
        lim.per_key = 0
        lim.rate_per_key = false
    end
    if lim.rate <= 0 or lim.rate_ms <= 0 then lim.rate = 0 end
    if lim.max <= 0 and lim.per_key <= 0 and lim.rate <= 0 then return nil, paused end
    -- The key is needed for per-key counts and per-key rates alike.
    lim.keyed = lim.per_key > 0 or lim.rate_per_key
    return lim, paused
end

-- The run's key: field lim.field of its msgpack input map, when a string or a number (tabs
-- replaced, at most 128 bytes); nil when there is none.
local function flow_key(lim, input)
    if not lim.keyed or not input or input == '' then return nil end
    local ok, t = pcall(cmsgpack.unpack, input)
    if not ok or type(t) ~= 'table' then return nil end
    local v = t[lim.field]
    if type(v) ~= 'string' and type(v) ~= 'number' then return nil end
    return string.sub((string.gsub(tostring(v), '\t', ' ')), 1, 128)
end

-- Runs of key `key` running now, by the zset `flow`; stale members are removed on the way.
local function flow_running(flow, key)
    local n = 0
    for _, m in ipairs(redis.call('ZRANGEBYLEX', flow, '[' .. key .. '\t', '[' .. key .. '\t\255')) do
        if redis.call('ZSCORE', WF_RUNNING, string.sub(m, #key + 2)) then
            n = n + 1
        else
            redis.call('ZREM', flow, m)
        end
    end
    return n
end

-- The rate member of a run of key `key`: the key itself when rates are per key, else '' (the
-- whole workflow); nil when there is no rate limit or the run has no key under a per-key rate.
local function flow_rate_member(lim, key)
    if lim.rate <= 0 then return nil end
    if lim.rate_per_key then return key end
    return ''
end

-- Milliseconds until a start of rate member `m` is allowed (0: now), `extra` starts let go but
-- not started yet (admit.lua) counted as started.
local function flow_rate_wait(lim, rate, m, now, extra)
    local tat = tonumber(redis.call('ZSCORE', rate, m)) or 0
    if tat < now then tat = now end
    local t = tat + (extra or 0) * lim.rate_ms / lim.rate - now
    return t > 0 and t or 0
end

-- Records a start of rate member `m` now: the next one is allowed rate_ms / rate later.
local function flow_rate_take(lim, rate, m, now)
    local tat = tonumber(redis.call('ZSCORE', rate, m)) or 0
    if tat < now then tat = now end
    redis.call('ZADD', rate, tat + lim.rate_ms / lim.rate, m)
    redis.call('ZREMRANGEBYSCORE', rate, '-inf', '(' .. now)
end

-- nil when a run of key `key` (nil: none) may start now, else why not. `extra` / `extra_key` are
-- runs let go but not running yet (admit.lua), counted as running (and as started, for rates).
local function flow_refuse(lim, flow, key, extra, extra_key, rate, now)
    if lim.max > 0 then
        local n = redis.call('ZCARD', WF_RUNNING) + (extra or 0)
        if n >= lim.max then
            return 'concurrency limit: ' .. n .. ' of ' .. lim.max .. ' running'
        end
    end
    if key and lim.per_key > 0 then
        local n = flow_running(flow, key) + (extra_key or 0)
        if n >= lim.per_key then
            return 'key limit: ' .. lim.field .. '=' .. key .. ' has ' .. n .. ' of ' ..
                lim.per_key .. ' running'
        end
    end
    local m = rate and flow_rate_member(lim, key)
    if m then
        local wait = flow_rate_wait(lim, rate, m, now, m == '' and extra or extra_key)
        if wait > 0 then
            return 'rate limit: ' .. lim.rate .. ' per ' .. lim.rate_ms .. ' ms' ..
                (m ~= '' and (' for ' .. lim.field .. '=' .. key) or '') .. ', next start in ' ..
                math.ceil(wait) .. ' ms'
        end
    end
    return nil
end

-- Drops up to `n` random members of `flow` whose run no longer runs (keys never checked again
-- would otherwise leave their members behind).
local function flow_sweep(flow, n)
    for _, m in ipairs(redis.call('ZRANDMEMBER', flow, n)) do
        local tab = string.find(m, '\t', 1, true)
        if not tab or not redis.call('ZSCORE', WF_RUNNING, string.sub(m, tab + 1)) then
            redis.call('ZREM', flow, m)
        end
    end
end

-- Refuses (like check_fixed_keys) when the flow keys hold another type, before anything is
-- written; returns the error reply or nil. `rate` may be nil (callers without rate limits).
local function flow_check_keys(limits, flow, held, rate)
    for _, k in ipairs({limits, flow, held, rate}) do
        local t = key_type(k)
        local want = k == limits and 'hash' or 'zset'
        if t ~= want and t ~= 'none' then
            return redis.error_reply('WRONGTYPE wf key ' .. k .. ' holds a ' .. t .. ', not a ' ..
                want .. ' (clobbered by hand?): delete or repair it')
        end
    end
    return nil
end
