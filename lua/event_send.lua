-- event_send.lua: record an event and hand back the runs waiting for it.
-- KEYS: 1 P:{ev:NAME}:log (stream), 2 P:{ev:NAME}:waiters (hash member -> key filter)
-- ARGV: 1 key (empty: none), 2 payload (msgpack, may be empty), 3 max log length
-- Returns {entry id, waiter members...}: each member is "RUNID STEP" of a run whose wait matches
-- (no key filter, or the same key). The caller delivers to each with deliver.lua, in the run's
-- own slot. Waiters stay registered until the run consumes the event, so a sender that dies
-- between the two calls loses nothing: the run finds the event in the log at its next check.
-- This script touches only the event's keys (its own hash tag), so it is Redis Cluster-safe.
-- (lib.lua is prepended but its fixed-key helpers are unused here.)
local entry = redis.call('XADD', KEYS[1], 'MAXLEN', '~', tonumber(ARGV[3]) or 10000, '*', 'k',
    ARGV[1], 'p', ARGV[2])
local out = {entry}
local w = redis.call('HGETALL', KEYS[2])
for i = 1, #w, 2 do
    if w[i + 1] == '' or w[i + 1] == ARGV[1] then out[#out + 1] = w[i] end
end
return out
