-- restart.lua: run a run again from the start as a new attempt, in any state (a failed run
-- retried by hand, a stuck one restarted), keeping or clearing its step records.
-- KEYS: 1-14 fixed, 15 run hash, 16 steps hash
-- ARGV: 1 run id, 2 clear steps (1: forget recorded steps so they execute again)
-- Returns the new attempt number. Errors: NOTFOUND.
local bad = check_fixed_keys()
if bad then return bad end
local h, steps, id = KEYS[WF_NFIXED + 1], KEYS[WF_NFIXED + 2], ARGV[1]
local f = redis.call('HMGET', h, 'state', 'entry', 'attempt', 'pri', 'evn')
if not f[1] then return redis.error_reply('NOTFOUND run ' .. id .. ' does not exist') end
-- The history so far, before finished_at goes (lib_history.lua ev_open: it may still be implicit).
if not f[5] then f[5] = ev_open(h) end
drop_entry(f[2], f[4])
redis.call('ZREM', KEYS[2], id)
redis.call('ZREM', KEYS[3], id)
redis.call('PERSIST', h)
if ARGV[2] == '1' then
    redis.call('DEL', steps)
else
    redis.call('PERSIST', steps)
end
local attempt = (tonumber(f[3]) or 0) + 1
redis.call('HINCRBY', h, 'lease', 1)
redis.call('HDEL', h, 'output', 'error', 'finished_at', 'wait_reason', 'wake_at', 'paused_from',
    'step')
local now = now_ms()
redis.call('HSET', h, 'attempt', attempt, 'reclaims', 0, ev_fields(h, f[5], now, 'restarted',
    'was ' .. f[1] .. '; attempt ' .. attempt .. (ARGV[2] == '1' and ', steps cleared' or '')))
set_state(h, id, f[1], 'queued', now)
push_ready(h, id, attempt, f[4])
return attempt
