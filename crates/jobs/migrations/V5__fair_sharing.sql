-- Fair sharing of the workers between customers.
--
-- `active_key`: at most one queued or running job per key (a repair of a
-- scope already being repaired is not queued twice); unlike `dedupe_key`
-- it is free again once the job ends.
ALTER TABLE jobs ADD COLUMN IF NOT EXISTS active_key text;
CREATE UNIQUE INDEX IF NOT EXISTS jobs_active_key ON jobs (active_key)
    WHERE state IN ('queued', 'running');

-- The claim counts each customer's running jobs and CreateJob its queued
-- ones: both read this index, not the table.
CREATE INDEX IF NOT EXISTS jobs_active_by_customer ON jobs (customer_id, state)
    WHERE state IN ('queued', 'running');

-- When each customer last had a job claimed: of two customers with as many
-- jobs running, the one served longer ago goes first, so the workers take
-- turns between customers instead of draining one customer's queue.
-- `customer_key` is the customer's id, 0 for jobs of all customers.
CREATE TABLE IF NOT EXISTS job_turns (
    customer_key    bigint PRIMARY KEY,
    last_claimed_at timestamptz NOT NULL
);
