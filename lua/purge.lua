-- purge.lua: delete finished runs, with their steps, before their retention time would (an
-- operator's `wf purge --older-than D`).
-- KEYS: 1-14 fixed, then per candidate (in ARGV order) its run hash and its steps hash
-- ARGV: 1 minimum age ms (the run's last state change must be at least this old, by Redis time),
--       then candidate run ids (read from the final state indexes by the caller; each is
--       re-checked here, so a run restarted or changed meanwhile is left alone)
-- Returns the number of runs deleted. A candidate whose hash already expired is only dropped
-- from the final state indexes (not counted). Errors: WRONGTYPE (a clobbered fixed key).
local bad = check_fixed_keys(WF_BASE_FIXED) -- it neither queues a run nor deletes an entry
if bad then return bad end
local cutoff = now_ms() - tonumber(ARGV[1])
local n = 0
local i = 1
while ARGV[1 + i] do
    local id = ARGV[1 + i]
    local h, steps = KEYS[WF_NFIXED + 2 * i - 1], KEYS[WF_NFIXED + 2 * i]
    local f = redis.call('HMGET', h, 'state', 'updated_at')
    if not f[1] then
        for s in pairs(WF_FINAL) do redis.call('ZREM', WF_STATE_KEY[s], id) end
    elseif WF_FINAL[f[1]] and (tonumber(f[2]) or 0) <= cutoff then
        redis.call('DEL', h, steps)
        redis.call('ZREM', WF_STATE_KEY[f[1]], id)
        n = n + 1
    end
    i = i + 1
end
return n
