-- event_send.lua: record an event and hand back the runs waiting for it.
-- KEYS: 1 P:{ev:NAME}:log (stream), 2 P:{ev:NAME}:waiters (hash member -> key filter),
--       3 (optional) P:{ev:NAME}:deadlines (hash member -> deadline ms, event_wait.lua)
-- ARGV: 1 key (empty: none), 2 payload (msgpack, may be empty), 3 max log length
-- Returns {entry id, waiter members...}: each member is "RUNID STEP" of a run whose wait matches
-- (no key filter, or the same key) and whose deadline, if it has one, is after this event's
-- time (the entry id's milliseconds, Redis time): an event at or after a wait's deadline does
-- not satisfy it. The caller delivers to each with deliver.lua, in the run's own slot, passing
-- the event's time. Waiters stay registered until the run consumes the event, so a sender that
-- dies between the two calls loses nothing: the run finds the event in the log at its next check.
-- This script touches only the event's keys (its own hash tag), so it is Redis Cluster-safe.
-- (lib.lua is prepended but its fixed-key helpers are unused here.)
local entry = redis.call('XADD', KEYS[1], 'MAXLEN', '~', tonumber(ARGV[3]) or 10000, '*', 'k',
    ARGV[1], 'p', ARGV[2])
local at = tonumber(string.match(entry, '^(%d+)'))
local out = {entry}
local w = redis.call('HGETALL', KEYS[2])
for i = 1, #w, 2 do
    if w[i + 1] == '' or w[i + 1] == ARGV[1] then
        local d = KEYS[3] and tonumber(redis.call('HGET', KEYS[3], w[i]))
        if not d or d <= 0 or at < d then out[#out + 1] = w[i] end
    end
end
return out
