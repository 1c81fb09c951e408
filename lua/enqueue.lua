-- enqueue.lua: create a run and make it ready (or delayed).
-- KEYS: 1-12 the workflow's fixed keys (lib.lua), 13 the run hash, [14 P:{W}:limits,
--       15 P:{W}:single: singleton and debounce (below); without them neither applies]
-- ARGV: 1 run id, 2 workflow name, 3 input (msgpack, may be empty), 4 delay ms (0: ready now),
--       [5 parent run id, 6 parent step: a child run started by wf_step_invoke (lib.lua parent_add)]
-- Returns {1, state} for a new run; {0, state} when a run with this id already exists (a
-- caller-chosen id used twice returns the existing run, untouched); {0, state, other id} when
-- singleton or debounce answered with the run that already stands for this key.
--
-- Singleton (limits `singleton` = 1): at most one run per key value (limits `key`, a field of the
-- input; no `key`: the whole workflow) queued, running, waiting or paused; a start while one is
-- returns that one. Debounce (limits `debounce_ms` = Q): a start waits Q ms (`waiting`, reason
-- "debounce"); another start of the same key value within that time pushes it back to Q ms from
-- now and returns the pending run, so the run starts once, Q ms after the last request, with the
-- first request's input. P:{W}:single maps a key value to its run: "ID" (singleton) or "ID|DUE"
-- (debounce: DUE is the delayed-zset score this script set, so a run whose timer is anything else,
-- e.g. a durable sleep after it started, is no longer pending).
local bad = check_fixed_keys()
if bad then return bad end
local h, id = KEYS[WF_NFIXED + 1], ARGV[1]
local existing = redis.call('HGET', h, 'state')
if existing then return {0, existing} end
local now = now_ms()
local delay = tonumber(ARGV[4]) or 0

local SINGLE = KEYS[WF_NFIXED + 3]
local kv, quiet, singleton
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
        if f[1] and f[1] ~= '' then
            kv = flow_key({keyed = true, field = f[1]}, ARGV[3])
        else
            kv = ''
        end
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

redis.call('HSET', h, 'workflow', ARGV[2], 'attempt', 1, 'created_at', now, 'reclaims', 0,
    'lease', 0, 'input', ARGV[3])
if ARGV[5] and ARGV[5] ~= '' then
    redis.call('HSET', h, 'parent', ARGV[5], 'parent_step', ARGV[6] or '')
end
if kv and quiet > 0 then
    -- No wake_at: the time moves with every new request; the timer is the delayed zset's score.
    local due = now + math.max(delay, quiet)
    set_state(h, id, nil, 'waiting', now)
    redis.call('HSET', h, 'wait_reason', 'debounce: starts ' .. quiet ..
        ' ms after the last start request')
    redis.call('ZADD', KEYS[2], due, id)
    redis.call('HSET', SINGLE, kv, id .. '|' .. due)
    return {1, 'waiting'}
end
if kv then redis.call('HSET', SINGLE, kv, id) end
if delay > 0 then
    set_state(h, id, nil, 'waiting', now)
    redis.call('HSET', h, 'wait_reason', 'delayed start', 'wake_at', now + delay)
    redis.call('ZADD', KEYS[2], now + delay, id)
    return {1, 'waiting'}
end
set_state(h, id, nil, 'queued', now)
push_ready(h, id, 1)
return {1, 'queued'}
