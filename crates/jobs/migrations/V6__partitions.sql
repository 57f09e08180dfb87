-- Partitions: the unit of a job's work that workers claim.
--
-- A job's attempt (its coordinator) may split an activity into partitions,
-- each a range of the activity's rows described by the job's handler
-- (`range`). Any worker claims a partition on its own lease, renewed by
-- heartbeat, with the partition's `attempts` as its fencing token, so several
-- `serve` processes share one job; each partition resumes from its own
-- checkpoint, and a finished one never runs again. The job row stays the
-- resource (state, cancel, error); its activities' progress adds up its
-- partitions'.
CREATE TABLE IF NOT EXISTS job_partitions (
    job_id           uuid NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    activity         text NOT NULL,
    -- 0, 1, ... in the order of their ranges.
    n                integer NOT NULL,
    -- The rows it covers: JSON to the engine, typed by the job's handler.
    range            jsonb NOT NULL,
    state            text NOT NULL DEFAULT 'queued'
                     CHECK (state IN ('queued', 'running', 'succeeded', 'failed')),
    attempts         integer NOT NULL DEFAULT 0,
    run_after        timestamptz NOT NULL DEFAULT now(),
    lease_owner      text,
    lease_expires_at timestamptz,
    checkpoint       jsonb,
    rows_done        bigint NOT NULL DEFAULT 0,
    pages_done       bigint NOT NULL DEFAULT 0,
    checkpoints_done bigint NOT NULL DEFAULT 0,
    rows_estimated   bigint NOT NULL DEFAULT 0,
    -- Time spent running it, over all attempts, for rows/s.
    active_ms        bigint NOT NULL DEFAULT 0,
    -- {code, message, retryable, details} of the last failure.
    error            jsonb,
    started_at       timestamptz,
    finished_at      timestamptz,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (job_id, activity, n)
);

-- What claims look at: partitions waiting or running.
CREATE INDEX IF NOT EXISTS job_partitions_open ON job_partitions (job_id)
    WHERE state IN ('queued', 'running');

-- Wake idle workers (and the job's coordinator) when partitions appear,
-- end, or are put back for a retry; they also poll.
CREATE OR REPLACE FUNCTION notify_job_partitions() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' OR NEW.state IS DISTINCT FROM OLD.state AND NEW.state <> 'running'
       OR NEW.run_after IS DISTINCT FROM OLD.run_after THEN
        PERFORM pg_notify('scorekeeper_jobs', '');
    END IF;
    RETURN NULL;
END
$$;
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'job_partitions_notify'
                   AND tgrelid = 'job_partitions'::regclass) THEN
        CREATE TRIGGER job_partitions_notify AFTER INSERT OR UPDATE ON job_partitions
            FOR EACH ROW EXECUTE FUNCTION notify_job_partitions();
    END IF;
END
$$;
