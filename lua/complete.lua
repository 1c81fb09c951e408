-- complete.lua: a handler returned: record its output and finish the run as completed.
-- KEYS: 1-12 fixed, 13 run hash, 14 run's steps hash
-- ARGV: 1 run id, 2 lease token, 3 output (msgpack), 4 retention ms
-- Returns 'OK', or an error STALE (the caller no longer holds the run: its result is dropped) /
-- NOTFOUND.
local h, steps, id = KEYS[WF_NFIXED + 1], KEYS[WF_NFIXED + 2], ARGV[1]
local e = check_lease(h, id, ARGV[2])
if e then return e end
local now = now_ms()
redis.call('HSET', h, 'output', ARGV[3])
redis.call('HDEL', h, 'error')
finish(h, steps, id, 'running', 'completed', now, tonumber(ARGV[4]))
return redis.status_reply('OK')
