-- status.lua: a run in plain words, whatever its state, in one call: what `wf status` and
-- wf_run_status read, and the one command an operator types (docs/redis-layout.md).
-- KEYS: 1 the run hash P:{W}:run:ID
-- ARGV: 1 the run id (WORKFLOW:SUFFIX)
-- Returns the run hash's field/value pairs when it has one; for a lean run that is still queued
-- (schema 2: only its stream entry, lib_queue.lua lean_find) the same fields its hash will have:
-- workflow, state `queued`, attempt, created_at, updated_at, input, entry and pri; else an empty
-- array (no such run).
-- The lanes it reads are named after KEYS[1] (same workflow, hash tag and slot), so an operator
-- passes one key; the fixed keys lib.lua's helpers read are those names.
local h, id = KEYS[1], ARGV[1]
local all = redis.call('HGETALL', h)
if #all > 0 then return all end
local base = string.match(h, '^(.*}:)run:')
if not base then return all end
local pri, entry, input = lean_find(id, {base .. 'queue', base .. 'queue:high', base .. 'queue:low'})
if not entry then return all end
local created = string.match(entry, '^(%d+)')
local out = {'workflow', string.match(id, '^(.*):') or '', 'state', 'queued', 'attempt', '1',
             'created_at', created, 'updated_at', created, 'input', input, 'entry', entry}
if pri then
    out[#out + 1] = 'pri'
    out[#out + 1] = pri
end
return out
