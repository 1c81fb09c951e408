-- migrate.lua: move one workflow's keys from schema 1 to schema 2 (`wf migrate`, wf_migrate).
-- KEYS: 1-14 fixed (lib.lua)
-- ARGV: none
-- Returns {queued, running}: the members the schema 1 indexes state:queued and state:running
-- held, now deleted. Schema 2 keeps neither (lib.lua WF_STATE_KEY): a queued run is its entry on
-- a lane and a running run its lease. Every other key, and every run of schema 1 (a hash and a
-- record entry `r`), is read by schema 2 as it is, so nothing else is rewritten: a run queued,
-- waiting, paused, running under a lease or finished before the upgrade goes on after it.
-- Idempotent: a second call finds nothing to delete and answers {0, 0}.
local n = {redis.call('ZCARD', KEYS[5]), redis.call('ZCARD', KEYS[6])}
redis.call('DEL', KEYS[5], KEYS[6])
return n
