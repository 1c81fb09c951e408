-- complete.lua: a handler returned: record its output and finish the run as completed.
-- KEYS: 1-12 fixed, 13 run hash, 14 run's steps hash, [15 P:{W}:outbox, only with ARGV 5],
--       [16 P:{W}:parents: a child run's end is recorded there for its parent (lib.lua parent_add)]
-- ARGV: 1 run id, 2 lease token, 3 output (msgpack), 4 retention ms,
--       [5 notify: '1' / 'auto' records the end in the outbox KEYS[15] (lib.lua outbox_add)]
-- Returns 'OK', or an error STALE (the caller no longer holds the run: its result is dropped) /
-- NOTFOUND.
local h, steps, id = KEYS[WF_NFIXED + 1], KEYS[WF_NFIXED + 2], ARGV[1]
local e = check_lease(h, id, ARGV[2])
if e then return e end
local now = now_ms()
redis.call('HSET', h, 'output', ARGV[3])
redis.call('HDEL', h, 'error')
finish(h, steps, id, 'running', 'completed', now, tonumber(ARGV[4]))
outbox_add(ARGV[5], KEYS[WF_NFIXED + 3], h, id, 'completed', now)
parent_add(KEYS[WF_NFIXED + 4], h, id, 'completed', now)
return redis.status_reply('OK')
