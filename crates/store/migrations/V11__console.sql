-- What the operator console keeps in Postgres, so that any `serve` process
-- behind a load balancer answers it.

-- Console sessions: the SHA-256 of a random session id (the cookie holds
-- the id, never stored), the token that logged in (revoking it ends the
-- session: every request joins api_tokens), the CSRF token of the session's
-- state-changing requests, and when it expires.
CREATE TABLE console_sessions (
    id_hash    bytea PRIMARY KEY,
    token_id   bigint NOT NULL REFERENCES api_tokens (id) ON DELETE CASCADE,
    csrf       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);
CREATE INDEX console_sessions_expiry ON console_sessions (expires_at);

-- Stored audit reports, newest first per customer: the console's drift
-- pages. customer_id NULL: an audit of all customers. job_id: the audit
-- job that ran it (NULL: an Audit call). phase: 'audit' or 'verify' (the
-- audit a repair runs after it). report: tables, days and named rows.
CREATE TABLE audit_reports (
    id           bigserial PRIMARY KEY,
    customer_id  bigint REFERENCES customers (id) ON DELETE CASCADE,
    job_id       uuid,
    phase        text NOT NULL,
    started_at   timestamptz NOT NULL,
    elapsed_ms   bigint NOT NULL,
    span_start   timestamptz,
    span_end     timestamptz,
    drifted_rows bigint NOT NULL,
    report       jsonb NOT NULL
);
CREATE INDEX audit_reports_recent ON audit_reports (customer_id, id DESC);

-- Rows each process wrote to ClickHouse per write path, since it started,
-- and when it last wrote: the console's freshness page sums them over the
-- fleet. A process upserts its rows every few seconds; rows of processes
-- gone for a day are deleted.
CREATE TABLE write_activity (
    process       text NOT NULL,
    path          text NOT NULL,
    rows_written  bigint NOT NULL,
    last_write_at timestamptz,
    reported_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (process, path)
);
