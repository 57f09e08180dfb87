-- A partition's claims that ended in a retryable failure (the server it
-- reads or writes unreachable or overloaded). They do not count against the
-- job type's attempts: a partition waits out an outage of any length,
-- retrying at the backoff's ceiling, instead of failing its job after a few
-- minutes. What the attempts bound is then the claims that ended otherwise,
-- chiefly takeovers after a worker died holding it.
ALTER TABLE job_partitions ADD COLUMN IF NOT EXISTS waits integer NOT NULL DEFAULT 0;
