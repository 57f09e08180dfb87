-- Pages an activity has read and written (the unit of its batch-size
-- settings), beside batches_done, which counts checkpoint commits: one
-- commit may cover many pages. Existing rows start at 0 pages: their jobs
-- ran before pages were counted.
--
-- Idempotent, like the rest of this set.
ALTER TABLE job_activities ADD COLUMN IF NOT EXISTS pages_done bigint NOT NULL DEFAULT 0;

-- The column keeps its name (renaming it would break a process of the
-- previous version still running against this database); say what it holds.
COMMENT ON COLUMN job_activities.batches_done IS
    'checkpoint commits of the activity (each after ClickHouse acknowledged the rows before it), not pages';
COMMENT ON COLUMN job_activities.pages_done IS
    'pages of the activity''s batch-size settings read and written';
