-- lib_history.lua: part of lib.lua (see there; cmake/embed_lua.cmake adds it after
-- lib_finish.lua): what a run did, as the scripts read and record it. Its step records (the
-- status of one, step_status; the count of executions lost with their worker, clear_lost), its
-- events (ev_*: wf_run_events), and the workflow's per-minute counts (hist_add:
-- wf_workflow_history).

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
