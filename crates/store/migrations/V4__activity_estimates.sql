-- Rows an activity expects to copy, counted when it starts, so progress can
-- show a fraction and an ETA. 0 until counted.
ALTER TABLE job_activities ADD COLUMN rows_estimated bigint NOT NULL DEFAULT 0;
