-- pause.lua: hold a queued, waiting or running run until resume.lua.
-- KEYS: 1-14 fixed, 15 run hash
-- ARGV: 1 run id
-- Returns the state it was paused from. Errors: NOTFOUND, FINAL <state>, BADSTATE (already
-- paused). A running run loses its lease (its worker's later results are STALE) and, on resume,
-- replays from its last recorded step.
local bad = check_fixed_keys()
if bad then return bad end
local h, id = KEYS[WF_NFIXED + 1], ARGV[1]
lean_hash(h, id) -- a lean queued run gets its hash first, then goes the common way
local f = redis.call('HMGET', h, 'state', 'entry', 'pri', 'evn')
if not f[1] then return redis.error_reply('NOTFOUND run ' .. id .. ' does not exist') end
if WF_FINAL[f[1]] then return redis.error_reply('FINAL ' .. f[1]) end
if f[1] == 'paused' then return redis.error_reply('BADSTATE run ' .. id .. ' is already paused') end
drop_entry(f[2], f[3])
redis.call('HDEL', h, 'entry')
redis.call('ZREM', KEYS[2], id)
redis.call('ZREM', KEYS[3], id)
redis.call('HINCRBY', h, 'lease', 1)
local now = now_ms()
set_state(h, id, f[1], 'paused', now)
redis.call('HSET', h, 'paused_from', f[1], ev_fields(h, f[4], now, 'paused', 'was ' .. f[1]))
return f[1]
