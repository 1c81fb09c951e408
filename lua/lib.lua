-- lib.lua: helpers shared by every wf script, and the conventions they keep. The build
-- (cmake/embed_lua.cmake) makes lua/ one Redis Functions library, `wf`: this file once, then its
-- parts lib_*.lua (below), then each script as a function `wf_NAME`. It is loaded once and serves
-- every call, so nothing here may hold what belongs to one call: KEYS and ARGV are the library's
-- upvalues, set from each FCALL's keys and args, and what depends on them or caches within a call
-- is set by wf_call_begin (below) before each script runs.
--
-- The helpers live in one file per concept, added in this order (embed_lua.cmake's list
-- lib_parts): a Lua local exists from its definition on, so a part may use what this file and the
-- parts before it define, never what comes after.
--   lib.lua          the fixed keys, states and lanes, the clock, set_state, the checks of keys
--                    and leases, and what each call sets (wf_call_begin)
--   lib_queue.lua    ready entries on the lanes, lean runs, a schedule's start of a run
--   lib_finish.lua   ending runs: final states, retention, the end told (outbox, parent)
--   lib_history.lua  what a run did: step records, its events, the per-minute counts
--   lib_flow.lua     flow control: limits per workflow and key, rates
-- The library's main chunk is all of them and the scripts: Lua 5.1 allows it 200 locals.
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
-- the one exception, the per-minute counters named after Redis time, is hist_add (lib_history.lua).
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

-- outbox_add's cache (lib_finish.lua): 'auto' asks Redis once per script call, not once per run
local WF_OUTBOX_EXISTS = {}

-- ---- Per call ----------------------------------------------------------------------------------
-- Run by the library before every script (cmake/embed_lua.cmake), once KEYS and ARGV are the
-- call's: the tables above that are read from KEYS, and the caches that last one call. (Here,
-- after the last of them: the lib_*.lua parts, which follow, keep no per-call state of their own.)
local function wf_call_begin()
    for i, s in ipairs(WF_STATES) do
        if s ~= 'queued' and s ~= 'running' then WF_STATE_KEY[s] = KEYS[4 + i] end
    end
    WF_RUNNING = KEYS[3]
    WF_LANE.high, WF_LANE.low = KEYS[13], KEYS[14]
    if next(WF_OUTBOX_EXISTS) then WF_OUTBOX_EXISTS = {} end
end
