-- claim.lua: turn stream entries this consumer just read into running runs with leases.
-- KEYS: 1-14 fixed, then one run hash per good entry (in ARGV order), then optionally
--       P:{W}:limits, P:{W}:flow, P:{W}:held, P:{W}:rate (flow control, lib_flow.lua; without them:
--       no limits)
-- ARGV: 1 consumer, 2 lease ms, 3 number of good entries G, 4 the lane the entries were read
--       from ('high', '' for normal, 'low': lib.lua lane_key), 5 one letter per good entry: 'r'
--       a run with a hash (a record entry, field `r`), 'p' a lean run (field `p`, enqueue.lua),
--       then G triples (entry id, run id, input: a lean run's `p`, '' for the others), then
--       pairs (entry id, reason) for entries that are not valid run records
-- Returns one item per good entry: {run id, lease token, attempt, input, started_at} when the run
-- is now ours, {run id} when the entry was stale (run stopped, paused or re-queued since),
-- {run id, 'GONE'} when the run's hash no longer exists (expired, or deleted by hand), or
-- {run id, 'DEAD', reason} when the run's key is not a hash (clobbered): that entry went to the
-- dead-letter list and the rest of the batch is claimed as usual, or {run id, 'HELD', reason}
-- when a flow limit held the run back (it is `waiting` in P:{W}:held, holding no slot), or
-- {run id, 'PAUSED'} for every good entry when the workflow is paused (P:{W}:limits field
-- `paused`, read only when the flow keys are given): those entries are left unacknowledged.
-- Every entry given is acknowledged and deleted here, on the lane it was read from: from now on
-- leases, not the stream's pending list, protect a running run. A run's entry is always on its
-- own lane, so the entry id alone tells the current entry from a stale one. Invalid entries go
-- to the dead-letter list with a reason.
-- A lean run's hash is written here, running, from its entry: nothing was written for it before.
-- Should that hash exist already, the run was stopped or paused while this worker held its entry
-- unclaimed (lib_queue.lua lean_hash; its entry is gone then: {run id}, stale), or, with its
-- entry still there, an old run has the same id (a lane deleted by hand restarts its ids):
-- dead-lettered.
-- Runs started for the first time are counted in P:{W}:hist:s:HOUR (lib_history.lua hist_add).
-- A clobbered fixed key refuses the whole batch before anything is written (WRONGTYPE): the
-- entries stay pending and XAUTOCLAIM retries them once the key is repaired.
local LANE = ARGV[4]
local Q = lane_key(LANE)
-- The fixed keys it writes: the lane it acknowledges on, the leases, the dead letters and the
-- waiting index (a held run). Each TYPE is a call, 12 of them were half a call per run in a drain.
local bad = check_fixed_keys({lane_index(LANE), 3, 4, 8})
if bad then return bad end
local consumer, lease_ms, g = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local now = now_ms()
-- Numbers passed to redis.call are formatted with printf on every call (about 6% of Redis's CPU
-- in a drain profile): the hot path passes these strings, made once per batch.
local now_s, until_s = tostring(now), tostring(now + lease_ms)
local out = {}
-- Flow control (lib_flow.lua), when the caller passes KEYS P:{W}:limits, P:{W}:flow, P:{W}:held,
-- P:{W}:rate after the run hashes: a run over a limit is answered {run id, 'HELD', reason} and
-- parked `waiting`.
local FLOW, HELD = KEYS[WF_NFIXED + g + 2], KEYS[WF_NFIXED + g + 3]
local RATE = KEYS[WF_NFIXED + g + 4]
if HELD then
    local bad_flow = flow_check_keys(KEYS[WF_NFIXED + g + 1], FLOW, HELD, RATE)
    if bad_flow then return bad_flow end
end
local FLOW_LIM, PAUSED
if HELD then FLOW_LIM, PAUSED = flow_limits(KEYS[WF_NFIXED + g + 1]) end
if FLOW_LIM and not RATE then FLOW_LIM.rate = 0 end

local function dead_letter(entry, reason, id)
    local raw = redis.call('XRANGE', Q, entry, entry)
    redis.call('XACK', Q, 'workers', entry)
    redis.call('XDEL', Q, entry)
    local fields = ''
    if raw[1] then fields = cjson.encode(raw[1][2]) end
    redis.call('LPUSH', KEYS[4], cjson.encode({entry = entry, reason = reason, at = now,
        consumer = consumer, fields = fields, id = id}))
    redis.call('LTRIM', KEYS[4], 0, 9999)
end

local function dead_letter_rest()
    local b = 6 + 3 * g
    while ARGV[b] do
        dead_letter(ARGV[b], ARGV[b + 1] or 'invalid record')
        b = b + 2
    end
end

-- A paused workflow (wf_workflow_pause): its entries are left as they are, unacknowledged in
-- this consumer's pending list, and the runs stay `queued`. Acknowledging them and queueing
-- fresh entries instead would hand them straight back to any read still armed over this lane
-- (a busy loop between workers that have not heard of the pause yet). Left pending, nothing
-- reads them again: the worker stops reading the workflow on this answer, and on resume takes
-- them back with XAUTOCLAIM (worker/flow.c), as it would after a dead consumer; no run is lost.
if PAUSED then
    for i = 1, g do out[i] = {ARGV[4 + 3 * i], 'PAUSED'} end
    dead_letter_rest()
    return out
end

-- Entries of runs handled here are acknowledged and deleted together at the end (two calls per
-- batch, not two per run); a dead-lettered entry is moved aside on its own.
local done = {}
local started = 0
-- The worker in a run's 'started' event: the consumer's last 28 bytes (HOST:PID:HEX, the PID and
-- HEX part always), so the event stays within a listpack value (lib_history.lua ev_fields).
local who = string.sub(consumer, -28)
local kinds = ARGV[5]
-- Claims lean run `id` from its `entry` with `input` into hash `h`; returns its answer.
local function claim_lean(h, entry, id, input)
    if FLOW_LIM then
        -- Under flow control the run goes the way of the others: a hash, queued, then the checks.
        lean_hash(h, id)
        return nil
    end
    if redis.call('HSETNX', h, 'state', 'running') == 0 then
        if redis.call('XRANGE', Q, entry, entry)[1] then
            dead_letter(entry, 'run ' .. id .. ' already exists (its lane was deleted and ' ..
                'reused ids?)', id)
            return {id, 'DEAD', 'run ' .. id .. ' already exists'}
        end
        done[#done + 1] = entry
        return {id}
    end
    done[#done + 1] = entry
    local f = {'workflow', string.match(id, '^(.*):'), 'attempt', '1', 'created_at',
               string.match(entry, '^(%d+)'), 'updated_at', now_s, 'input', input, 'lease', '1',
               'worker', consumer, 'started_at', now_s}
    if LANE == 'high' or LANE == 'low' then
        f[#f + 1] = 'pri'
        f[#f + 1] = LANE
    end
    redis.call('HSET', h, unpack(f))
    redis.call('ZADD', KEYS[3], until_s, id)
    started = started + 1
    return {id, '1', 1, input, now}
end
for i = 1, g do
    local entry, id = ARGV[3 + 3 * i], ARGV[4 + 3 * i]
    local h = KEYS[WF_NFIXED + i]
    local lean = string.sub(kinds, i, i) == 'p' and claim_lean(h, entry, id, ARGV[5 + 3 * i])
    if lean then out[#out + 1] = lean end
    if not lean then
        -- One read for everything the claim needs; an error here means the key is not a hash.
        local f = redis.pcall('HMGET', h, 'state', 'entry', 'lease', 'attempt', 'input',
            'created_at', 'wait_reason', 'wake_at', 'held', 'started_at', 'evn')
        if f.err then
            local reason = 'run key ' .. h .. ' holds a ' .. key_type(h) ..
                ', not a hash (WRONGTYPE)'
            dead_letter(entry, reason, id)
            out[#out + 1] = {id, 'DEAD', reason}
        else
            done[#done + 1] = entry
            local why, fkey
            local mine = f[1] == 'queued' and f[2] == entry
            if FLOW_LIM and mine then
                fkey = flow_key(FLOW_LIM, f[5])
                why = flow_refuse(FLOW_LIM, FLOW, fkey, 0, 0, RATE, now)
            end
            if why then
                -- Held back, in line by creation time; admit.lua re-queues it when there is room.
                set_state(h, id, 'queued', 'waiting', now)
                redis.call('HSET', h, 'wait_reason', why, 'held', '1')
                redis.call('HDEL', h, 'entry', 'wake_at')
                redis.call('ZADD', HELD, tonumber(f[6]) or now, id)
                out[#out + 1] = {id, 'HELD', why}
            elseif mine then
                local token = tostring((tonumber(f[3]) or 0) + 1)
                redis.call('HSET', h, 'state', 'running', 'updated_at', now_s, 'lease', token,
                    'worker', consumer, 'started_at', now_s, ev_next(h, f[11], now_s, 'started',
                    f[11] and ('attempt ' .. tostring(f[4]) .. ' on ' .. who)))
                -- `entry` stays until the run ends (finish_one drops it): stale either way, since
                -- a claim needs state queued, and one call fewer per run.
                if f[7] or f[8] or f[9] then
                    redis.call('HDEL', h, 'wait_reason', 'wake_at', 'held')
                end
                if fkey and FLOW_LIM.per_key > 0 then
                    redis.call('ZADD', FLOW, 0, fkey .. '\t' .. id)
                end
                local rm = FLOW_LIM and flow_rate_member(FLOW_LIM, fkey)
                if rm then flow_rate_take(FLOW_LIM, RATE, rm, now) end
                redis.call('ZADD', KEYS[3], until_s, id)
                -- Started: the run's first claim (a reclaimed, retried or restarted run was
                -- before).
                if not f[10] and f[4] == '1' then started = started + 1 end
                out[#out + 1] = {id, token, tonumber(f[4]), f[5] or '', now}
            elseif not f[1] then
                out[#out + 1] = {id, 'GONE'}
            else
                out[#out + 1] = {id}
            end
        end
    end
end
-- The entries of the runs handled here go from the lane. XDEL finds each entry in its listpack
-- node and marks it, three times the cost of the XADD that wrote it (INFO commandstats of a drain:
-- 1.6 us a run); XTRIM MINID drops whole nodes at once. The lane can be cut up to the oldest entry
-- still needed: the first one not yet delivered, and the oldest pending one (read by a worker that
-- has not claimed it yet, left by a paused workflow or by a dead consumer). Entries of this batch
-- at or after that cut (another worker's older entry is pending) are deleted one by one.
-- Finding the cut costs two calls (XINFO, XPENDING): a batch of fewer than 4 entries, the usual
-- one when runs come one at a time, deletes its entries with one XDEL instead.
local function cut_of(lane)
    local cut = nil
    for _, g in ipairs(redis.call('XINFO', 'GROUPS', lane)) do
        local f = {}
        for i = 1, #g, 2 do f[g[i]] = g[i + 1] end
        if f.name == 'workers' then
            local ms, seq = string.match(f['last-delivered-id'] or '', '^(%d+)%-(%d+)$')
            if ms then cut = {tonumber(ms), tonumber(seq) + 1} end
        end
    end
    if not cut then return nil end
    local p = redis.call('XPENDING', lane, 'workers')
    local ms, seq = string.match(type(p[2]) == 'string' and p[2] or '', '^(%d+)%-(%d+)$')
    if ms and (tonumber(ms) < cut[1] or (tonumber(ms) == cut[1] and tonumber(seq) < cut[2])) then
        cut = {tonumber(ms), tonumber(seq)}
    end
    return cut
end
local function before(entry, cut)
    local ms, seq = string.match(entry, '^(%d+)%-(%d+)$')
    ms, seq = tonumber(ms), tonumber(seq)
    return ms < cut[1] or (ms == cut[1] and seq < cut[2])
end
for s = 1, #done, 1000 do -- (unpack's stack limit)
    local e = math.min(s + 999, #done)
    redis.call('XACK', Q, 'workers', unpack(done, s, e))
end
if #done > 0 then
    local cut, rest = #done >= 4 and cut_of(Q), {}
    if cut then
        redis.call('XTRIM', Q, 'MINID', string.format('%d-%d', cut[1], cut[2]))
        for _, entry in ipairs(done) do
            if not before(entry, cut) then rest[#rest + 1] = entry end
        end
    else
        rest = done
    end
    for s = 1, #rest, 1000 do redis.call('XDEL', Q, unpack(rest, s, math.min(s + 999, #rest))) end
end
if FLOW_LIM and FLOW_LIM.per_key > 0 then flow_sweep(FLOW, 4) end
hist_add('s', started, now)
dead_letter_rest()
return out
