-- Rows an activity expects to copy, counted when it starts, so progress can
-- show a fraction and an ETA. 0 until counted.
--
-- Idempotent: older databases got this column from the store's V4.
ALTER TABLE job_activities ADD COLUMN IF NOT EXISTS rows_estimated bigint NOT NULL DEFAULT 0;
