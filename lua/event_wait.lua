-- event_wait.lua: register a run's wait for an event and, in the same atomic step, look for a
-- matching event that already arrived (since the wait's look-back start, before its deadline).
-- The deadline is decided here, by Redis time: an event satisfies the wait when its log entry
-- was written before the deadline (the entry id's milliseconds are Redis time at XADD), and the
-- wait has timed out once Redis time reached the deadline with no such event.
-- KEYS: 1 P:{ev:NAME}:log, 2 P:{ev:NAME}:waiters, 3 (optional) P:{ev:NAME}:deadlines (hash
--       member -> deadline ms, read by event_send.lua so it does not deliver late events)
-- ARGV: 1 waiter member "RUNID STEP", 2 key filter (empty: any), 3 since (stream id or ms),
--       4 mode: 'wait' registers the waiter, 'done' unregisters it (the run consumed the event or
--       gave up) and looks for nothing, 5 the wait's deadline (Redis ms; 0 or absent: none)
-- Returns {} when nothing matched and the deadline has not come (the waiter stays registered),
-- {entry id, payload} for the first matching event logged before the deadline, or {'TIMEOUT'}
-- when there is none and Redis time reached the deadline (the waiter is unregistered).
local deadline = tonumber(ARGV[5]) or 0
local function unregister()
    redis.call('HDEL', KEYS[2], ARGV[1])
    if KEYS[3] then redis.call('HDEL', KEYS[3], ARGV[1]) end
end
if ARGV[4] == 'done' then
    unregister()
    return {}
end
local now = now_ms()
-- Entries of the millisecond before the deadline are in; the deadline's own are late.
local stop = deadline > 0 and tostring(deadline - 1) or '+'
local start = ARGV[3]
while true do
    local batch = redis.call('XRANGE', KEYS[1], start, stop, 'COUNT', 100)
    if #batch == 0 then break end
    for _, e in ipairs(batch) do
        local f = {}
        for j = 1, #e[2], 2 do f[e[2][j]] = e[2][j + 1] end
        if ARGV[2] == '' or f.k == ARGV[2] then
            redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
            return {e[1], f.p or ''}
        end
    end
    start = '(' .. batch[#batch][1]
end
if deadline > 0 and now >= deadline then
    unregister()
    return {'TIMEOUT'}
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
if deadline > 0 and KEYS[3] then redis.call('HSET', KEYS[3], ARGV[1], deadline) end
return {}
