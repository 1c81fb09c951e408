-- resume.lua: a paused run goes back to where it was: `waiting` with its timer if that is still
-- ahead, else `queued`.
-- KEYS: 1-14 fixed, 15 run hash
-- ARGV: 1 run id
-- Returns the new state. Errors: NOTFOUND, FINAL <state>, BADSTATE (not paused).
local bad = check_fixed_keys()
if bad then return bad end
local h, id = KEYS[WF_NFIXED + 1], ARGV[1]
local f = redis.call('HMGET', h, 'state', 'paused_from', 'wake_at', 'attempt', 'pri', 'evn')
if not f[1] then return redis.error_reply('NOTFOUND run ' .. id .. ' does not exist') end
if WF_FINAL[f[1]] then return redis.error_reply('FINAL ' .. f[1]) end
if f[1] ~= 'paused' then
    return redis.error_reply('BADSTATE run ' .. id .. ' is ' .. f[1] .. ', not paused')
end
local now = now_ms()
redis.call('HDEL', h, 'paused_from')
local wake = tonumber(f[3])
local back = (f[2] == 'waiting' and wake and wake > now) and 'waiting' or 'queued'
redis.call('HSET', h, ev_fields(h, f[6], now, 'resumed', 'now ' .. back))
if back == 'waiting' then
    set_state(h, id, 'paused', 'waiting', now)
    redis.call('ZADD', KEYS[2], wake, id)
    return 'waiting'
end
set_state(h, id, 'paused', 'queued', now)
redis.call('HDEL', h, 'wait_reason', 'wake_at')
push_ready(h, id, f[4], f[5])
return 'queued'
