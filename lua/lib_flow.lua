-- lib_flow.lua: part of lib.lua (see there; cmake/embed_lua.cmake adds it after
-- lib_history.lua): flow control, the helpers with which claim.lua and admit.lua hold back the
-- runs over a workflow's limits and let them go.

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
