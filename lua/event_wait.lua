-- event_wait.lua: register a run's wait for an event and, in the same atomic step, look for a
-- matching event that already arrived (since the wait's look-back start).
-- KEYS: 1 P:{ev:NAME}:log, 2 P:{ev:NAME}:waiters
-- ARGV: 1 waiter member "RUNID STEP", 2 key filter (empty: any), 3 since (stream id or ms),
--       4 mode: 'wait' registers the waiter, 'done' unregisters it (the run consumed the event or
--       gave up) and looks for nothing
-- Returns {} when nothing matched (the waiter stays registered), or {entry id, payload}.
if ARGV[4] == 'done' then
    redis.call('HDEL', KEYS[2], ARGV[1])
    return {}
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
local start = ARGV[3]
while true do
    local batch = redis.call('XRANGE', KEYS[1], start, '+', 'COUNT', 100)
    if #batch == 0 then return {} end
    for _, e in ipairs(batch) do
        local f = {}
        for j = 1, #e[2], 2 do f[e[2][j]] = e[2][j + 1] end
        if ARGV[2] == '' or f.k == ARGV[2] then return {e[1], f.p or ''} end
    end
    start = '(' .. batch[#batch][1]
end
