-- lib_queue.lua: part of lib.lua (see there; cmake/embed_lua.cmake adds it after lib.lua): the
-- queued runs. A ready run is an entry on the lane of its priority (lib.lua lane_key): a msgpack
-- run record pointing at the run's hash (ready_entry, push_ready), or, for a lean run, the whole
-- run (lean_*). And the start of a run by a schedule (sched_start), queued as enqueue.lua does.

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
