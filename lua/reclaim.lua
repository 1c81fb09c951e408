-- reclaim.lua: runs whose lease expired (their worker died or lost Redis) go back to the queue.
-- KEYS: 1-14 fixed, then per candidate (in ARGV order) its run hash and its steps hash, then
--       optionally P:{W}:parents (a child run failed here is recorded there, lib_finish.lua
--       parent_add)
-- ARGV: 1 max reclaims, 2 retention ms (unless the workflow's own, lib_finish.lua keep_policy),
--       then candidate run ids (read from the leases zset by the caller; each is re-checked
--       here, so racing reapers are harmless)
-- Runs failed here are counted in P:{W}:hist:f:HOUR (lib_history.lua hist_add).
-- Returns the number of runs re-queued plus failed. A re-queued run's steps hash counts the
-- executions lost since its last step record in the field ' lost' (lib_history.lua
-- WF_LOST_FIELD).
local bad = check_fixed_keys()
if bad then return bad end
local max_reclaims, retention = tonumber(ARGV[1]), tonumber(ARGV[2])
local now = now_ms()
local parents = KEYS[WF_NFIXED + 2 * (#ARGV - 2) + 1]
local n, failed = 0, 0
local keep -- the workflow's retention of failed runs, read at the first one (keep_policy)
local i = 1
while ARGV[2 + i] do
    local id = ARGV[2 + i]
    local h, steps = KEYS[WF_NFIXED + 2 * i - 1], KEYS[WF_NFIXED + 2 * i]
    local due = redis.call('ZSCORE', KEYS[3], id)
    if due and tonumber(due) <= now then
        redis.call('ZREM', KEYS[3], id)
        -- A run key that is not a hash (clobbered) is dropped from the leases, not fatal to
        -- the whole batch.
        local f = key_type(h) == 'hash' and redis.call('HMGET', h, 'state', 'worker', 'attempt',
            'pri', 'evn')
            or {}
        if f[1] == 'running' then
            local r = redis.call('HINCRBY', h, 'reclaims', 1)
            -- The lease token moves on, so a late answer from the presumed-dead worker is STALE.
            redis.call('HINCRBY', h, 'lease', 1)
            if r > max_reclaims then
                local why = 'worker lost ' .. r .. ' times while running this run (last: ' ..
                    tostring(f[2]) .. '); the run may be crashing its worker'
                redis.call('HSET', h, 'error', why, ev_fields(h, f[5], now, 'failed', why))
                keep = keep or keep_policy('f', retention)
                local drop = finish(h, steps, id, 'running', 'failed', now, keep)
                parent_add(parents, h, id, 'failed', now)
                if drop then drop_ended(h, steps, id, 'failed') end
                failed = failed + 1
            else
                local why = 'lease expired: worker ' .. tostring(f[2]) .. ' presumed dead; run ' ..
                    're-queued'
                redis.call('HSET', h, 'error', why, ev_fields(h, f[5], now, 'reclaimed', why))
                -- The execution lost may have been inside a step body: the next step recorded
                -- counts it in its attempts (wf_step_attempt, worker/step.c) and clears this.
                redis.call('HINCRBY', steps, WF_LOST_FIELD, 1)
                set_state(h, id, 'running', 'queued', now)
                push_ready(h, id, f[3], f[4])
            end
            n = n + 1
        end
    end
    i = i + 1
end
hist_add('f', failed, now)
return n
