-- lib.lua: helpers prepended to every wf script at build time (cmake/embed_lua.cmake).
--
-- Every script receives the workflow's fixed keys first, in this order (client/keys.c builds
-- them), then the keys of the runs it touches:
--   KEYS[1]  P:{W}:queue      stream of ready runs, consumer group "workers"
--   KEYS[2]  P:{W}:delayed    zset run id -> due time (ms): retries, sleeps, delayed starts
--   KEYS[3]  P:{W}:leases     zset run id -> lease expiry (ms) of running runs
--   KEYS[4]  P:{W}:dead       list of stream entries that were not valid run records
--   KEYS[5..12] P:{W}:state:S zset run id -> last change (ms), one per state below
-- Scripts never build key names themselves, so every key they touch is declared (Redis Cluster).
-- Time is Redis time: worker clocks may drift without harm.

local WF_NFIXED = 12
local WF_STATES = {'queued', 'running', 'paused', 'waiting', 'completed', 'failed', 'cancelled',
                   'terminated'}
local WF_STATE_KEY = {}
for i, s in ipairs(WF_STATES) do WF_STATE_KEY[s] = KEYS[4 + i] end
local WF_FINAL = {completed = true, failed = true, cancelled = true, terminated = true}

local function now_ms()
    local t = redis.call('TIME')
    return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Moves run `id` (hash `h`) from state `from` to `to`: the hash and the state indexes together.
local function set_state(h, id, from, to, now)
    if from and WF_STATE_KEY[from] then redis.call('ZREM', WF_STATE_KEY[from], id) end
    redis.call('ZADD', WF_STATE_KEY[to], now, id)
    redis.call('HSET', h, 'state', to, 'updated_at', now)
end

-- Appends a ready entry for run `id` to the queue and remembers it in the run hash, so a claim
-- can tell the current entry from a stale one. The entry is the msgpack run record.
local function push_ready(h, id, attempt)
    local rec = cmsgpack.pack({v = 1, id = id, a = tonumber(attempt) or 1})
    local entry = redis.call('XADD', KEYS[1], '*', 'r', rec)
    redis.call('HSET', h, 'entry', entry)
    return entry
end

-- Ends run `id` in final state `to`, keeps it `retention` ms, prunes the final index.
local function finish(h, steps, id, from, to, now, retention)
    set_state(h, id, from, to, now)
    redis.call('HSET', h, 'finished_at', now)
    redis.call('HDEL', h, 'wait_reason', 'wake_at', 'entry')
    redis.call('ZREM', KEYS[3], id)
    redis.call('ZREM', KEYS[2], id)
    if retention > 0 then
        redis.call('PEXPIRE', h, retention)
        if steps then redis.call('PEXPIRE', steps, retention) end
        redis.call('ZREMRANGEBYSCORE', WF_STATE_KEY[to], '-inf', now - retention)
    end
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
local WF_FIXED_TYPES = {'stream', 'zset', 'zset', 'list'}
local function check_fixed_keys()
    for i = 1, WF_NFIXED do
        local want = WF_FIXED_TYPES[i] or 'zset'
        local t = key_type(KEYS[i])
        if t ~= want and t ~= 'none' then
            return redis.error_reply('WRONGTYPE wf key ' .. KEYS[i] .. ' holds a ' .. t ..
                ', not a ' .. want .. ' (clobbered by hand?): delete or repair it')
        end
    end
    return nil
end

-- Checks that the caller still holds run `id`'s lease; returns the run's state or raises the
-- STALE error that the C side maps to WF_ERR_STALE (or the WRONGTYPE one of check_fixed_keys).
local function check_lease(h, id, token)
    local bad = check_fixed_keys()
    if bad then return bad end
    local f = redis.call('HMGET', h, 'state', 'lease')
    if not f[1] then return redis.error_reply('NOTFOUND run ' .. id .. ' does not exist') end
    if f[1] ~= 'running' or f[2] ~= token then
        return redis.error_reply('STALE run ' .. id .. ' is ' .. f[1] .. ' (lease ' ..
            tostring(f[2]) .. ', caller has ' .. token .. ')')
    end
    return nil
end

-- Records that run `id` ended in `state` in the workflow's outbox stream `outbox` (P:{W}:outbox,
-- consumer group "webhooks"), in the script that ends the run, so a crash between the end and the
-- delivery of its notification loses nothing (worker/webhook.c delivers). `mode` is the optional
-- trailing "notify" ARGV of complete/fail/stop: '1' always, 'auto' only when the outbox exists (a
-- worker with webhooks created its group), anything else (or absent) never. The stream keeps the
-- newest ~100,000 entries if nobody drains it.
local function outbox_add(mode, outbox, h, id, state, now)
    if not outbox or (mode ~= '1' and mode ~= 'auto') then return end
    if mode == 'auto' and redis.call('EXISTS', outbox) == 0 then return end
    local wf = redis.call('HGET', h, 'workflow') or ''
    redis.call('XADD', outbox, 'MAXLEN', '~', 100000, '*', 'id', id, 'state', state,
        'workflow', wf, 'at', now)
end

-- ---- Flow control (claim.lua, admit.lua) -------------------------------------------------------
-- A workflow's limits live in the hash P:{W}:limits (max_running; key + max_per_key), set with
-- wf_flow_set / `wf limit`. Runs over a limit are parked `waiting` in the zset P:{W}:held (holding
-- no worker slot) until admit.lua lets them go. Runs running per key value are the members
-- "KEY\tRUNID" of the zset P:{W}:flow (all score 0, read by lex range); a member whose run is no
-- longer in the running index is dropped when seen, so no exit script needs to know about it.

-- The limits in hash `k` as {max, field, per_key}, or nil when there are none.
local function flow_limits(k)
    if not k then return nil end
    local f = redis.call('HMGET', k, 'max_running', 'key', 'max_per_key')
    local lim = {max = tonumber(f[1]) or 0, field = f[2], per_key = tonumber(f[3]) or 0}
    if not lim.field or lim.field == '' then lim.per_key = 0 end
    if lim.max <= 0 and lim.per_key <= 0 then return nil end
    return lim
end

-- The run's key: field lim.field of its msgpack input map, when a string or a number (tabs
-- replaced, at most 128 bytes); nil when there is none.
local function flow_key(lim, input)
    if lim.per_key <= 0 or not input or input == '' then return nil end
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
        if redis.call('ZSCORE', WF_STATE_KEY.running, string.sub(m, #key + 2)) then
            n = n + 1
        else
            redis.call('ZREM', flow, m)
        end
    end
    return n
end

-- nil when a run of key `key` (nil: none) may start now, else why not. `extra` / `extra_key` are
-- runs let go but not running yet (admit.lua), counted as running.
local function flow_refuse(lim, flow, key, extra, extra_key)
    if lim.max > 0 then
        local n = redis.call('ZCARD', WF_STATE_KEY.running) + (extra or 0)
        if n >= lim.max then
            return 'concurrency limit: ' .. n .. ' of ' .. lim.max .. ' running'
        end
    end
    if key then
        local n = flow_running(flow, key) + (extra_key or 0)
        if n >= lim.per_key then
            return 'key limit: ' .. lim.field .. '=' .. key .. ' has ' .. n .. ' of ' ..
                lim.per_key .. ' running'
        end
    end
    return nil
end

-- Drops up to `n` random members of `flow` whose run no longer runs (keys never checked again
-- would otherwise leave their members behind).
local function flow_sweep(flow, n)
    for _, m in ipairs(redis.call('ZRANDMEMBER', flow, n)) do
        local tab = string.find(m, '\t', 1, true)
        if not tab or not redis.call('ZSCORE', WF_STATE_KEY.running, string.sub(m, tab + 1)) then
            redis.call('ZREM', flow, m)
        end
    end
end

-- Refuses (like check_fixed_keys) when the flow keys hold another type, before anything is
-- written; returns the error reply or nil.
local function flow_check_keys(limits, flow, held)
    for _, k in ipairs({limits, flow, held}) do
        local t = key_type(k)
        local want = k == limits and 'hash' or 'zset'
        if t ~= want and t ~= 'none' then
            return redis.error_reply('WRONGTYPE wf key ' .. k .. ' holds a ' .. t .. ', not a ' ..
                want .. ' (clobbered by hand?): delete or repair it')
        end
    end
    return nil
end
