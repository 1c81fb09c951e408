-- outbox.lua: the end of one webhook notification of the outbox (worker/webhook.c): delivered
-- (acknowledged and deleted) or given up (copied to the dead outbox with the reason, then
-- acknowledged and deleted), atomically, so an entry is never both pending and dead.
-- KEYS: 1 P:{W}:outbox (stream, consumer group "webhooks"), 2 P:{W}:outbox:dead (stream)
-- ARGV: 1 entry id, 2 mode 'ack' or 'dead', 3 reason (dead), 4 attempts made (dead),
--       5.. the entry's field/value pairs (dead: copied into the dead entry)
-- Returns 1 when the entry was still pending and is now done, 0 when it was not pending any more
-- (another worker that took it over finished it first: nothing is written).
-- Unlike the run scripts, this one takes no fixed keys: it touches the outbox only.
local outbox, dead, entry, mode = KEYS[1], KEYS[2], ARGV[1], ARGV[2]
if redis.call('XACK', outbox, 'webhooks', entry) == 0 then return 0 end
if mode == 'dead' then
    local fields = {'entry', entry, 'reason', ARGV[3] or '', 'attempts', ARGV[4] or '0'}
    local i = 5
    while ARGV[i] and ARGV[i + 1] do
        fields[#fields + 1] = ARGV[i]
        fields[#fields + 1] = ARGV[i + 1]
        i = i + 2
    end
    redis.call('XADD', dead, 'MAXLEN', '~', 10000, '*', unpack(fields))
end
redis.call('XDEL', outbox, entry)
return 1
