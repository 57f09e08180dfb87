-- Cron schedules: the last tick each schedule fired. The row is what makes a
-- tick fire once however many `serve` processes run a scheduler: a tick is
-- fired by the transaction that moves `last_tick` forward to it, and that
-- same transaction creates the tick's job (see jobs::store::schedules).
--
-- Idempotent: older databases got this table from the store's V3.

CREATE TABLE IF NOT EXISTS schedules (
    -- e.g. 'reindex'; also part of the jobs' dedupe_key ('schedule:<name>:<tick>').
    name       text PRIMARY KEY,
    -- The newest tick fired (or, on a scheduler's very first start, recorded
    -- without a job). Only ever moves forward.
    last_tick  timestamptz NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
