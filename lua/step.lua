-- step.lua: record a finished (or failed) step of a running run, atomically with the lease check.
-- KEYS: 1-14 fixed, 15 run hash, 16 steps hash
-- ARGV: 1 run id, 2 lease token, 3 step name, 4 step record (msgpack map, see worker/step.c),
--       5 (optional) '1': the record counts the executions lost before it; clear the count
--       (lib.lua WF_LOST_FIELD)
-- Returns 'OK', or an error STALE / NOTFOUND: a worker that lost the run records nothing.
-- It writes no fixed key, so the clobbered-key guard (12 TYPE calls, a third of a step's cost)
-- has nothing to protect here: a clobbered run or steps hash fails the first read or write, before
-- anything changed.
local h, steps, id = KEYS[WF_NFIXED + 1], KEYS[WF_NFIXED + 2], ARGV[1]
local e = lease_reply(id, redis.call('HMGET', h, 'state', 'lease'), ARGV[2])
if e then return e end
redis.call('HSET', steps, ARGV[3], ARGV[4])
clear_lost(steps, ARGV[5])
redis.call('HSET', h, 'step', ARGV[3], 'updated_at', now_ms())
return redis.status_reply('OK')
