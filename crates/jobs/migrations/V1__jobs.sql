-- Durable jobs. The row *is* the JobService resource: typed payload, state,
-- attempts, error, and per-activity progress with its checkpoint.
--
-- A worker claims a job with FOR UPDATE SKIP LOCKED and holds it with a lease
-- it renews by heartbeat. `attempts` is the fencing token: every progress,
-- checkpoint and result write says which attempt it comes from, and is
-- refused once another claim has raised it.
--
-- Idempotent (IF NOT EXISTS, CREATE OR REPLACE, a guarded trigger): databases
-- created before the job engine had its own migrations got these tables from
-- the store's V2, and this file must then change nothing (see README.md).

CREATE TABLE IF NOT EXISTS jobs (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    -- NULL: all customers (admin-created).
    customer_id      bigint REFERENCES customers (id),
    job_type         smallint NOT NULL,        -- proto JobType number
    payload          jsonb NOT NULL,           -- the handler's typed payload, as JSON
    state            text NOT NULL DEFAULT 'queued'
                     CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    attempts         integer NOT NULL DEFAULT 0,
    max_attempts     integer NOT NULL,
    run_after        timestamptz NOT NULL DEFAULT now(),
    lease_owner      text,
    lease_expires_at timestamptz,
    cancel_requested boolean NOT NULL DEFAULT false,
    -- {code, message, retryable, details} of the last failure.
    error            jsonb,
    -- Set by the scheduler: one job per tick, however many schedulers fire it.
    dedupe_key       text UNIQUE,
    created_at       timestamptz NOT NULL DEFAULT now(),
    started_at       timestamptz,
    finished_at      timestamptz,
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS jobs_claimable ON jobs (run_after, created_at) WHERE state IN ('queued', 'running');
CREATE INDEX IF NOT EXISTS jobs_listing ON jobs (created_at DESC, id);

-- Progress of each activity of a job; written in the same statement that
-- checks the fencing token.
CREATE TABLE IF NOT EXISTS job_activities (
    job_id        uuid NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    activity      text NOT NULL,
    position      integer NOT NULL,
    rows_done     bigint NOT NULL DEFAULT 0,
    batches_done  bigint NOT NULL DEFAULT 0,
    -- Where to resume: JSON to the engine, typed by the activity's handler.
    checkpoint    jsonb,
    finished      boolean NOT NULL DEFAULT false,
    -- Time spent running this activity, over all attempts, for rows/s.
    active_ms     bigint NOT NULL DEFAULT 0,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (job_id, activity)
);

-- Wake idle workers when a job is queued (they also poll). The channel is
-- `scorekeeper_jobs::store::CHANNEL`, which the workers LISTEN on.
CREATE OR REPLACE FUNCTION notify_jobs() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('scorekeeper_jobs', '');
    RETURN NULL;
END
$$;
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'jobs_notify' AND tgrelid = 'jobs'::regclass) THEN
        CREATE TRIGGER jobs_notify AFTER INSERT OR UPDATE OF run_after ON jobs
            FOR EACH STATEMENT EXECUTE FUNCTION notify_jobs();
    END IF;
END
$$;
