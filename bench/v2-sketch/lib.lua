#!lua name=wfsketch
-- lib.lua - the hot path of the Redis layout v2 (docs/redis-layout-v2.md) as a Redis Functions
-- library, reduced to what a no-op or 5-step run costs, so that the design's figures are measured
-- rather than guessed (measure.py). Not the product: no flow control, outbox, parents, lanes.

-- wfs_enqueue: KEYS 1 the queue stream; ARGV one input per run. Returns the entry ids, which
-- are the run ids' suffixes.
local function enqueue(keys, args)
    local out = {}
    for i = 1, #args do out[i] = redis.call('XADD', keys[1], '*', 'p', args[i]) end
    return out
end

-- wfs_finish: KEYS 1 queue, 2 done index, 3 per-minute counter hash, then the run hash of each run.
-- ARGV 1 consumer, 2 retention (ms; -1 kept, pruned later from the done index; 0 keep none),
-- 3 fence ('1': check that this consumer still holds the entry with this delivery count), then
-- per run: entry id, token (delivery count), output, input, started_at.
-- Returns per run 1 (finished) or 0 (lease lost: nothing written).
local function finish(keys, args)
    local q, consumer, retention = keys[1], args[1], tonumber(args[2])
    local t = redis.call('TIME')
    local now = tostring(t[1] * 1000 + math.floor(t[2] / 1000))
    local ok, out = {}, {}
    for i = 1, (#args - 3) / 5 do
        local b = 3 + (i - 1) * 5
        local e, tok = args[b + 1], args[b + 2]
        local good = true
        if args[3] == '1' then
            local p = redis.call('XPENDING', q, 'workers', e, e, 1, consumer)
            good = p[1] ~= nil and tostring(p[1][4]) == tok
        end
        out[i] = good and 1 or 0
        if good then
            ok[#ok + 1] = e
            if retention ~= 0 then
                local h = keys[3 + i]
                redis.call('HSET', h, 'state', 'completed', 'input', args[b + 4], 'output',
                    args[b + 3], 'started_at', args[b + 5], 'finished_at', now, 'worker', consumer)
                if retention > 0 then redis.call('PEXPIRE', h, retention) end
            end
        end
    end
    if #ok > 0 then
        redis.call('XACK', q, 'workers', unpack(ok))
        redis.call('XDEL', q, unpack(ok))
        if retention ~= 0 then
            redis.call('XADD', keys[2], 'MAXLEN', '~', '100000', '*', 'c', table.concat(ok, ' '))
        end
        redis.call('HINCRBY', keys[3], tostring(math.floor(tonumber(now) / 60000) % 60), #ok)
    end
    return out
end

-- wfs_steps: KEYS 1 queue, then the steps hash of each record. ARGV 1 consumer, then per record:
-- entry id, token, step name, record. Returns per record 1 (recorded) or 0 (lease lost).
local function steps(keys, args)
    local out = {}
    for i = 1, (#args - 1) / 4 do
        local b = 1 + (i - 1) * 4
        local e = args[b + 1]
        local p = redis.call('XPENDING', keys[1], 'workers', e, e, 1, args[1])
        out[i] = 0
        if p[1] ~= nil and tostring(p[1][4]) == args[b + 2] then
            redis.call('HSET', keys[1 + i], args[b + 3], args[b + 4])
            out[i] = 1
        end
    end
    return out
end

redis.register_function('wfs_enqueue', enqueue)
redis.register_function('wfs_finish', finish)
redis.register_function('wfs_steps', steps)
