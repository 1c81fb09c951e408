-- enqueue_lean.lua: start runs as lean runs (schema 2: one stream entry each, enqueue.lua), with
-- the fewest keys and arguments: the client's first call for runs with generated ids, ready now,
-- without a parent. Everything else, and a call repeated after a lost answer, is enqueue.lua's.
-- A single call's Redis CPU is mostly its round trip and the script's fixed price, and that price
-- grows with the arguments it parses: enqueue.lua takes seventeen keys and eight arguments.
-- KEYS: 1 the lane of the runs' priority (P:{W}:queue, :queue:high or :queue:low),
--       2 P:{W}:limits (singleton and debounce need the runs to have hashes)
-- ARGV: then per run (its id's suffix, a ULID; its input, msgpack, may be empty)
-- Returns the number of runs written; or 'FULL' (a status), having written nothing, when any of
-- them must go through enqueue.lua (the workflow has singleton or debounce; a ULID more than 2 s
-- off Redis's clock: lib_queue.lua lean_ms).
local f = redis.pcall('HMGET', KEYS[2], 'singleton', 'debounce_ms')
if f.err then return f end
if f[1] == '1' or (tonumber(f[2]) or 0) > 0 then return redis.status_reply('FULL') end
local now, ms = now_ms(), {}
for i = 1, #ARGV, 2 do
    ms[i] = lean_ms(ARGV[i], now)
    if not ms[i] then return redis.status_reply('FULL') end
end
for i = 1, #ARGV, 2 do lean_add(KEYS[1], ARGV[i], ms[i], ARGV[i + 1]) end
return #ARGV / 2
