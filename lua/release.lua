-- release.lua: a draining worker hands a run it holds back to the queue, unfinished.
-- KEYS: 1-14 fixed, 15 run hash
-- ARGV: 1 run id, 2 lease token
-- Returns 'OK', or an error STALE / NOTFOUND. The attempt is not counted as failed: the next
-- worker replays finished steps and goes on.
local h, id = KEYS[WF_NFIXED + 1], ARGV[1]
local e = check_lease(h, id, ARGV[2])
if e then return e end
local now = now_ms()
redis.call('ZREM', KEYS[3], id)
redis.call('HINCRBY', h, 'lease', 1)
set_state(h, id, 'running', 'queued', now)
local f = redis.call('HMGET', h, 'attempt', 'pri', 'evn', 'worker')
redis.call('HSET', h, ev_fields(h, f[3], now, 'released', 'by draining worker ' ..
    tostring(f[4])))
push_ready(h, id, f[1], f[2])
return redis.status_reply('OK')
