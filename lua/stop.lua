-- stop.lua: cancel a run in any non-final state.
-- KEYS: 1-14 fixed, 15 run hash, 16 steps hash, [17 P:{W}:outbox, only with ARGV 4],
--       [18 P:{W}:parents: a child run's cancellation is recorded there, lib_finish.lua parent_add]
-- ARGV: 1 run id, 2 reason text, 3 retention ms (unless the workflow's own, lib_finish.lua
--       keep_policy), [4 notify: '1' / 'auto' records the cancellation in the outbox KEYS[17]
--       (lib_finish.lua outbox_add); libwf's wf_run_stop passes 'auto']
-- Returns the state the run was in. Errors: NOTFOUND, FINAL <state> (nothing to do).
-- A running run loses its lease here: its worker learns it at the next heartbeat (and sees
-- wf_ctx_cancelled), and whatever it reports afterwards is refused as STALE.
local bad = check_fixed_keys()
if bad then return bad end
local h, steps, id = KEYS[WF_NFIXED + 1], KEYS[WF_NFIXED + 2], ARGV[1]
lean_hash(h, id) -- a lean queued run gets its hash first, then goes the common way
local f = redis.call('HMGET', h, 'state', 'entry', 'pri', 'evn')
if not f[1] then return redis.error_reply('NOTFOUND run ' .. id .. ' does not exist') end
if WF_FINAL[f[1]] then return redis.error_reply('FINAL ' .. f[1]) end
drop_entry(f[2], f[3])
local now = now_ms()
redis.call('HSET', h, 'error', ARGV[2], ev_fields(h, f[4], now, 'stopped', ARGV[2]))
local drop = finish(h, steps, id, f[1], 'cancelled', now, keep_policy('f', ARGV[3]))
outbox_add(ARGV[4], KEYS[WF_NFIXED + 3], h, id, 'cancelled', now)
parent_add(KEYS[WF_NFIXED + 4], h, id, 'cancelled', now)
if drop then drop_ended(h, steps, id, 'cancelled') end
return f[1]
