-- The outbox no longer notifies from a trigger. A transaction that runs
-- NOTIFY takes a database-wide lock at commit and holds it until its commit
-- record is flushed, so every scorecard write committed one after another,
-- each waiting for its own fsync: `bench api` measured 150 creates/s with
-- the sessions queued on that lock ("Lock: object"). Writers now announce
-- new entries after their commit, from a separate non-durable transaction
-- coalesced per process (store::outbox::OutboxAnnouncer); dispatchers still
-- LISTEN on scorekeeper_outbox and poll as before.
DROP TRIGGER IF EXISTS outbox_notify ON outbox;
DROP FUNCTION IF EXISTS notify_outbox();
