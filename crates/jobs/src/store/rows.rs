//! Rows of `jobs` and `job_activities` into records, one function per
//! record, every column read by name: reordering a column list cannot shift
//! a field.

use scorekeeper_domain::CustomerId;
use scorekeeper_store::{Result, StoreError};
use tokio_postgres::Row;
use uuid::Uuid;

use crate::job::{ActivityProgress, Job, JobError, JobState, PartitionProgress, PartitionState};

/// The columns [`job`] reads, for `SELECT` and `RETURNING`.
pub(super) const JOB_COLUMNS: &str = "id, customer_id, job_type, payload, state, attempts, max_attempts, \
     run_after, lease_owner, cancel_requested, error, dedupe_key, created_at, started_at, finished_at";

/// The columns [`activity_progress`] reads.
pub(super) const ACTIVITY_COLUMNS: &str = "job_id, activity, position, rows_done, pages_done, batches_done, \
     checkpoint, finished, active_ms, rows_estimated";

/// A row of [`JOB_COLUMNS`], without its activities.
pub(super) fn job(row: &Row) -> Result<Job> {
    let state: &str = row.try_get("state")?;
    let error: Option<serde_json::Value> = row.try_get("error")?;
    Ok(Job {
        id: row.try_get("id")?,
        customer_id: row.try_get::<_, Option<i64>>("customer_id")?.map(CustomerId),
        job_type: row.try_get("job_type")?,
        payload: row.try_get("payload")?,
        state: JobState::parse(state).ok_or_else(|| StoreError::Corrupt(format!("job state {state:?}")))?,
        attempts: row.try_get("attempts")?,
        max_attempts: row.try_get("max_attempts")?,
        run_after: row.try_get("run_after")?,
        lease_owner: row.try_get("lease_owner")?,
        cancel_requested: row.try_get("cancel_requested")?,
        error: error.map(job_error).transpose()?,
        dedupe_key: row.try_get("dedupe_key")?,
        created_at: row.try_get("created_at")?,
        started_at: row.try_get("started_at")?,
        finished_at: row.try_get("finished_at")?,
        activities: Vec::new(),
    })
}

fn job_error(stored: serde_json::Value) -> Result<JobError> {
    serde_json::from_value(stored).map_err(|e| StoreError::Corrupt(format!("job error: {e}")))
}

/// A row of [`ACTIVITY_COLUMNS`]: the job it belongs to and its progress.
pub(super) fn activity_progress(row: &Row) -> Result<(Uuid, ActivityProgress)> {
    Ok((
        row.try_get("job_id")?,
        ActivityProgress {
            activity: row.try_get("activity")?,
            position: row.try_get("position")?,
            rows_done: row.try_get("rows_done")?,
            pages_done: row.try_get("pages_done")?,
            // The column kept its old name: it counts checkpoint commits.
            checkpoints_done: row.try_get("batches_done")?,
            checkpoint: row.try_get("checkpoint")?,
            finished: row.try_get("finished")?,
            active_ms: row.try_get("active_ms")?,
            rows_estimated: row.try_get("rows_estimated")?,
            partitions: Vec::new(),
        },
    ))
}

/// The columns [`partition_progress`] reads.
pub(super) const PARTITION_COLUMNS: &str = "job_id, activity, n, range, state, attempts, lease_owner, checkpoint, \
     rows_done, pages_done, checkpoints_done, rows_estimated, active_ms, error";

/// A row of [`PARTITION_COLUMNS`]: the job it belongs to and the partition.
pub(super) fn partition_progress(row: &Row) -> Result<(Uuid, PartitionProgress)> {
    let state: &str = row.try_get("state")?;
    let error: Option<serde_json::Value> = row.try_get("error")?;
    Ok((
        row.try_get("job_id")?,
        PartitionProgress {
            activity: row.try_get("activity")?,
            n: row.try_get("n")?,
            range: row.try_get("range")?,
            state: PartitionState::parse(state)
                .ok_or_else(|| StoreError::Corrupt(format!("partition state {state:?}")))?,
            attempts: row.try_get("attempts")?,
            lease_owner: row.try_get("lease_owner")?,
            checkpoint: row.try_get("checkpoint")?,
            rows_done: row.try_get("rows_done")?,
            pages_done: row.try_get("pages_done")?,
            checkpoints_done: row.try_get("checkpoints_done")?,
            rows_estimated: row.try_get("rows_estimated")?,
            active_ms: row.try_get("active_ms")?,
            error: error.map(job_error).transpose()?,
        },
    ))
}

/// `cancel_requested` of a fenced write's `RETURNING`, or the lease lost
/// when the write matched no row.
pub(super) fn lease(row: Option<Row>) -> Result<crate::job::Lease> {
    Ok(match row {
        Some(row) => crate::job::Lease::Held { cancel_requested: row.try_get("cancel_requested")? },
        None => crate::job::Lease::Lost,
    })
}
