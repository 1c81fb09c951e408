-- enqueue.lua: create runs and make them ready (or delayed). Several runs of one workflow may go
-- in one call (wf_run_workflow_batch sends a chunk per call), so the fixed-key check, the clock
-- and the limits are paid once per chunk; each run is still created or found on its own.
-- KEYS: 1-14 the workflow's fixed keys (lib.lua), 15 the run hash, [16 P:{W}:limits,
--       17 P:{W}:single: singleton and debounce (below); without them neither applies; then the
--       hashes of further runs]
-- ARGV: 1 run id, 2 workflow name, 3 input (msgpack, may be empty), 4 delay ms (0: ready now),
--       [5 parent run id, 6 parent step: a child run started by wf_step_invoke (lib_finish.lua
--       parent_add; '' for none), 7 priority: 'high', 'low', or '' / absent for normal (kept in
--       the run hash as `pri`, lib.lua lane_key), 8 '1' when the client generated the ids
--       (ULIDs, no caller-chosen id): the runs may be lean (below), '2' the same when the call
--       repeats one whose answer was lost (each run is looked for first, lean or not); then
--       (run id, input) of further runs, same delay, parent, priority and ARGV 8]
-- Returns {1, state} for a new run; {0, state} when a run with this id already exists (a
-- caller-chosen id used twice returns the existing run, untouched); {0, state, other id} when
-- singleton or debounce answered with the run that already stands for this key. With further
-- runs: an array of those replies, one per run, in order.
--
-- Lean runs (schema 2): a run with a generated id, ready now, without a parent, of a workflow
-- without singleton or debounce, is written as one stream entry and nothing else, fields `c`
-- (its id's suffix) and `p` (its input): no hash, no index (lib_queue.lua lean_find reads it back
-- from its id). Its hash appears when it is claimed (claim.lua) or touched while queued
-- (lib_queue.lua lean_hash). About 60 B of Redis memory and one XADD, against a hash, an index
-- entry and a record entry (~450 B) for the others.
local pri = ARGV[7]
if pri ~= 'high' and pri ~= 'low' then pri = nil end
local wfname = ARGV[2]
local delay = tonumber(ARGV[4]) or 0
local parent, parent_step = ARGV[5] or '', ARGV[6] or ''
local generated = ARGV[8] == '1'

local SINGLE = KEYS[WF_NFIXED + 3]
local kfield, quiet, singleton
local function not_a_hash(k)
    return redis.error_reply('WRONGTYPE wf key ' .. k .. ' holds a ' .. key_type(k) ..
        ', not a hash (clobbered by hand?): delete or repair it')
end
if SINGLE then
    -- One HMGET on the hot path (no limits: nothing else); a clobbered key fails it before
    -- anything is written.
    local lim_key = KEYS[WF_NFIXED + 2]
    local f = redis.pcall('HMGET', lim_key, 'key', 'singleton', 'debounce_ms')
    if f.err then return not_a_hash(lim_key) end
    quiet = tonumber(f[3]) or 0
    singleton = f[2] == '1'
    if singleton or quiet > 0 then
        local t = key_type(SINGLE)
        if t ~= 'hash' and t ~= 'none' then return not_a_hash(SINGLE) end
        kfield = f[1] or ''
    end
end

-- The runs of the call, {hash key, id, input} each; further run j (2, 3, ...) has its hash at
-- KEYS[WF_NFIXED + 2 + j] and its id and input at ARGV 5 + 2j, 6 + 2j.
local runs = {{KEYS[WF_NFIXED + 1], ARGV[1], ARGV[3]}}
while ARGV[5 + 2 * (#runs + 1)] do
    local j = #runs + 1
    runs[j] = {KEYS[WF_NFIXED + 2 + j], ARGV[5 + 2 * j], ARGV[6 + 2 * j] or ''}
end
local out, answered = {}, 0
local function reply()
    if #runs == 1 then return out[1] end
    return out
end

-- A repeated call (ARGV 8 '2'): a run that the lost call did start is answered as it stands.
local function started_before(h, id)
    local st = redis.call('HGET', h, 'state')
    if st then return {0, st} end
    if select(2, lean_find(id)) then return {0, 'queued'} end -- (its entry: 1st is the lane)
    return nil
end

-- The lean path (lib_queue.lua lean_ms, lean_add; enqueue_lean.lua is the same for first calls,
-- with fewer keys). A run whose ULID is more than 2 s off Redis's clock is not lean (the hash path
-- below finds it by its key whatever the clocks say). A clobbered lane fails the first XADD, before
-- anything is written, so no TYPE check is needed.
if (ARGV[8] == '1' or ARGV[8] == '2') and delay <= 0 and parent == '' and not kfield then
    local lane, now = lane_key(pri), now_ms()
    for i, r in ipairs(runs) do
        local suffix = string.sub(r[2], #wfname + 2)
        local ms = lean_ms(suffix, now)
        if ms then
            out[i] = ARGV[8] == '2' and started_before(r[1], r[2])
            if not out[i] then
                lean_add(lane, suffix, ms, r[3])
                out[i] = {1, 'queued'}
            end
            answered = answered + 1
        end
    end
    if answered == #runs then return reply() end
end

local bad = check_fixed_keys({lane_index(pri), 2, 8}) -- (schema 2 has no queued index to write)
if bad then return bad end
local now = now_ms()
local now_s = tostring(now) -- passed as a string: a number is printf-formatted on every call

-- Creates (or finds) run `id` with hash `h` and input `input`; returns its reply.
local function enqueue_one(h, id, input)
    local existing = redis.call('HGET', h, 'state')
    if existing then return {0, existing} end
    if ARGV[8] == '2' and select(2, lean_find(id)) then return {0, 'queued'} end
    local kv
    if kfield then
        if kfield ~= '' then
            kv = flow_key({keyed = true, field = kfield}, input)
        else
            kv = ''
        end
    end
    if kv then
        local cur = redis.call('HGET', SINGLE, kv)
        if cur then
            local bar = string.find(cur, '|', 1, true)
            local cid = bar and string.sub(cur, 1, bar - 1) or cur
            local cdue = bar and tonumber(string.sub(cur, bar + 1))
            if quiet > 0 and cdue and tonumber(redis.call('ZSCORE', KEYS[2], cid)) == cdue and
                redis.call('ZSCORE', WF_STATE_KEY.waiting, cid) then
                local due = now + quiet
                redis.call('ZADD', KEYS[2], due, cid)
                redis.call('HSET', SINGLE, kv, cid .. '|' .. due)
                return {0, 'waiting', cid}
            end
            if singleton then
                -- A singleton run always has a hash (it is never lean): its state says it all.
                -- The one key named here rather than declared: the run hash of `cid`, built
                -- from this run's (same workflow, same hash tag and slot).
                local st = redis.call('HGET', string.sub(h, 1, #h - #id) .. cid, 'state')
                if st and not WF_FINAL[st] then return {0, st, cid} end
            end
        end
    end
    -- The whole hash in one HSET: no lease or reclaims fields until something counts them.
    local f = {'workflow', wfname, 'attempt', '1', 'created_at', now_s, 'updated_at', now_s,
               'input', input}
    if parent ~= '' then
        f[#f + 1] = 'parent'
        f[#f + 1] = parent
        f[#f + 1] = 'parent_step'
        f[#f + 1] = parent_step
    end
    if pri then
        f[#f + 1] = 'pri'
        f[#f + 1] = pri
    end
    local state, due
    if kv and quiet > 0 then
        -- No wake_at: the time moves with every new request; the timer is the delayed zset's score.
        state, due = 'waiting', now + math.max(delay, quiet)
        f[#f + 1] = 'wait_reason'
        f[#f + 1] = 'debounce: starts ' .. quiet .. ' ms after the last start request'
        redis.call('HSET', SINGLE, kv, id .. '|' .. due)
    else
        if kv then redis.call('HSET', SINGLE, kv, id) end
        if delay > 0 then
            state, due = 'waiting', now + delay
            f[#f + 1] = 'wait_reason'
            f[#f + 1] = 'delayed start'
            f[#f + 1] = 'wake_at'
            f[#f + 1] = due
        else
            state = 'queued'
            f[#f + 1] = 'entry'
            f[#f + 1] = ready_entry(id, 1, pri) -- stored by the HSET below
        end
    end
    f[#f + 1] = 'state'
    f[#f + 1] = state
    -- A plain start leaves its history implicit (lib_history.lua ev_open); a delayed one records
    -- when it is due.
    if due then
        local k1, v1, k2, v2 = ev_fields(h, 0, now_s, 'enqueued', 'due at ' .. due)
        f[#f + 1] = k1
        f[#f + 1] = v1
        f[#f + 1] = k2
        f[#f + 1] = v2
    end
    redis.call('HSET', h, unpack(f))
    if WF_STATE_KEY[state] then redis.call('ZADD', WF_STATE_KEY[state], now_s, id) end
    if due then redis.call('ZADD', KEYS[2], due, id) end
    return {1, state}
end

for i, r in ipairs(runs) do
    if not out[i] then out[i] = enqueue_one(r[1], r[2], r[3]) end
end
return reply()
