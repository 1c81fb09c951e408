-- enqueue.lua: create runs and make them ready (or delayed). Several runs of one workflow may go
-- in one call (wf_run_workflow_batch sends a chunk per call), so the fixed-key check, the clock
-- and the limits are paid once per chunk; each run is still created or found on its own.
-- KEYS: 1-14 the workflow's fixed keys (lib.lua), 15 the run hash, [16 P:{W}:limits,
--       17 P:{W}:single: singleton and debounce (below); without them neither applies; then the
--       hashes of further runs]
-- ARGV: 1 run id, 2 workflow name, 3 input (msgpack, may be empty), 4 delay ms (0: ready now),
--       [5 parent run id, 6 parent step: a child run started by wf_step_invoke (lib.lua
--       parent_add; '' for none), 7 priority: 'high', 'low', or '' / absent for normal (kept in
--       the run hash as `pri`, lib.lua lane_key); then (run id, input) of further runs, same
--       delay, parent and priority]
-- Returns {1, state} for a new run; {0, state} when a run with this id already exists (a
-- caller-chosen id used twice returns the existing run, untouched); {0, state, other id} when
-- singleton or debounce answered with the run that already stands for this key. With further
-- runs: an array of those replies, one per run, in order.
--
-- Singleton (limits `singleton` = 1): at most one run per key value (limits `key`, a field of the
-- input; no `key`: the whole workflow) queued, running, waiting or paused; a start while one is
-- returns that one. Debounce (limits `debounce_ms` = Q): a start waits Q ms (`waiting`, reason
-- "debounce"); another start of the same key value within that time pushes it back to Q ms from
-- now and returns the pending run, so the run starts once, Q ms after the last request, with the
-- first request's input. P:{W}:single maps a key value to its run: "ID" (singleton) or "ID|DUE"
-- (debounce: DUE is the delayed-zset score this script set, so a run whose timer is anything else,
-- e.g. a durable sleep after it started, is no longer pending).
-- Only the fixed keys this script writes are checked (the runs' lane, delayed, and the queued and
-- waiting indexes): a read of another clobbered key fails before anything is written.
local pri = ARGV[7]
if pri ~= 'high' and pri ~= 'low' then pri = nil end
local bad = check_fixed_keys({lane_index(pri), 2, 5, 8})
if bad then return bad end
local wfname = ARGV[2]
local delay = tonumber(ARGV[4]) or 0
local parent, parent_step = ARGV[5] or '', ARGV[6] or ''
local now = now_ms()
local now_s = tostring(now) -- passed as a string: a number is printf-formatted on every call

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

-- Creates (or finds) run `id` with hash `h` and input `input`; returns its reply.
local function enqueue_one(h, id, input)
    local existing = redis.call('HGET', h, 'state')
    if existing then return {0, existing} end
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
                for _, st in ipairs({'queued', 'running', 'waiting', 'paused'}) do
                    if redis.call('ZSCORE', WF_STATE_KEY[st], cid) then return {0, st, cid} end
                end
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
    -- A plain start leaves its history implicit (lib.lua ev_open); a delayed one records when
    -- it is due.
    if due then
        local k1, v1, k2, v2 = ev_fields(h, 0, now_s, 'enqueued', 'due at ' .. due)
        f[#f + 1] = k1
        f[#f + 1] = v1
        f[#f + 1] = k2
        f[#f + 1] = v2
    end
    redis.call('HSET', h, unpack(f))
    redis.call('ZADD', WF_STATE_KEY[state], now_s, id)
    if due then redis.call('ZADD', KEYS[2], due, id) end
    return {1, state}
end

local first = enqueue_one(KEYS[WF_NFIXED + 1], ARGV[1], ARGV[3])
if not ARGV[8] then return first end
local out = {first}
-- Further run j (2, 3, ...): hash KEYS[WF_NFIXED + 2 + j], id and input from ARGV[4 + 2j].
local j = 2
while ARGV[4 + 2 * j] do
    out[j] = enqueue_one(KEYS[WF_NFIXED + 2 + j], ARGV[4 + 2 * j], ARGV[5 + 2 * j] or '')
    j = j + 1
end
return out
