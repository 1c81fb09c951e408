-- enqueue.lua: create a run and make it ready (or delayed).
-- KEYS: 1-12 the workflow's fixed keys (lib.lua), 13 the run hash
-- ARGV: 1 run id, 2 workflow name, 3 input (msgpack, may be empty), 4 delay ms (0: ready now),
--       [5 parent run id, 6 parent step: a child run started by wf_step_invoke (lib.lua parent_add)]
-- Returns {1, state} for a new run; {0, state} when a run with this id already exists (a
-- caller-chosen id used twice returns the existing run, untouched).
local bad = check_fixed_keys()
if bad then return bad end
local h, id = KEYS[WF_NFIXED + 1], ARGV[1]
local existing = redis.call('HGET', h, 'state')
if existing then return {0, existing} end
local now = now_ms()
local delay = tonumber(ARGV[4]) or 0
redis.call('HSET', h, 'workflow', ARGV[2], 'attempt', 1, 'created_at', now, 'reclaims', 0,
    'lease', 0, 'input', ARGV[3])
if ARGV[5] and ARGV[5] ~= '' then
    redis.call('HSET', h, 'parent', ARGV[5], 'parent_step', ARGV[6] or '')
end
if delay > 0 then
    set_state(h, id, nil, 'waiting', now)
    redis.call('HSET', h, 'wait_reason', 'delayed start', 'wake_at', now + delay)
    redis.call('ZADD', KEYS[2], now + delay, id)
    return {1, 'waiting'}
end
set_state(h, id, nil, 'queued', now)
push_ready(h, id, 1)
return {1, 'queued'}
