//! The job tables: create, read, claim with a lease, heartbeat, record
//! progress, finish. Every write made on behalf of a running attempt carries
//! its fencing token (the attempt number) and is refused, by the same
//! statement, once the job was claimed again or is no longer running.

use std::time::Duration;

use chrono::{DateTime, Utc};
use scorekeeper_domain::CustomerId;
use serde::{Deserialize, Serialize};
use tokio_postgres::{Row, Transaction};
use uuid::Uuid;

use crate::Store;
use crate::error::{Result, StoreError};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum JobState {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        }
    }

    fn parse(text: &str) -> Result<JobState> {
        Ok(match text {
            "queued" => JobState::Queued,
            "running" => JobState::Running,
            "succeeded" => JobState::Succeeded,
            "failed" => JobState::Failed,
            "cancelled" => JobState::Cancelled,
            other => return Err(StoreError::Corrupt(format!("job state {other:?}"))),
        })
    }

    pub fn is_terminal(self) -> bool {
        matches!(self, JobState::Succeeded | JobState::Failed | JobState::Cancelled)
    }
}

/// Why an attempt failed, as stored and shown by GetJob.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobError {
    /// A stable word, e.g. `clickhouse_unavailable`, `invalid_payload`.
    pub code: String,
    pub message: String,
    pub retryable: bool,
    #[serde(default)]
    pub details: serde_json::Value,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ActivityProgress {
    pub activity: String,
    pub position: i32,
    pub rows_done: i64,
    pub batches_done: i64,
    pub checkpoint: Option<serde_json::Value>,
    pub finished: bool,
    /// Time spent in this activity over all attempts.
    pub active_ms: i64,
    /// Rows the activity expects to copy; 0 until it has counted.
    pub rows_estimated: i64,
}

impl ActivityProgress {
    pub fn rows_per_second(&self) -> f64 {
        if self.active_ms == 0 { 0.0 } else { self.rows_done as f64 * 1000.0 / self.active_ms as f64 }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Job {
    pub id: Uuid,
    pub customer_id: Option<CustomerId>,
    pub job_type: i16,
    pub payload: serde_json::Value,
    pub state: JobState,
    pub attempts: i32,
    pub max_attempts: i32,
    pub run_after: DateTime<Utc>,
    pub lease_owner: Option<String>,
    pub cancel_requested: bool,
    pub error: Option<JobError>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// In workflow order.
    pub activities: Vec<ActivityProgress>,
}

/// A job to create. `activities` are the workflow's steps, in order, so
/// progress shows them before they start.
#[derive(Clone, Debug, PartialEq)]
pub struct NewJob {
    pub customer_id: Option<CustomerId>,
    pub job_type: i16,
    pub payload: serde_json::Value,
    pub max_attempts: i32,
    /// One job per key, ever: a second create with the same key returns the
    /// existing job.
    pub dedupe_key: Option<String>,
    pub activities: Vec<String>,
}

/// Filters of `list_jobs`; `None` matches all.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct JobFilter {
    pub state: Option<JobState>,
    pub job_type: Option<i16>,
    pub customer_id: Option<CustomerId>,
}

/// A claimed attempt: the job and the fencing token of this attempt.
#[derive(Clone, Debug, PartialEq)]
pub struct Claim {
    pub job: Job,
    pub fence: i32,
}

/// What a heartbeat found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lease {
    /// Still ours; whether someone asked to cancel.
    Held { cancel_requested: bool },
    /// Claimed again by another worker, or finished: stop, write nothing.
    Lost,
}

/// One batch of an activity's progress.
#[derive(Clone, Debug, PartialEq)]
pub struct ProgressUpdate<'a> {
    pub activity: &'a str,
    pub rows: i64,
    pub batches: i64,
    pub checkpoint: Option<&'a serde_json::Value>,
    pub finished: bool,
    pub active: Duration,
}

const JOB_COLUMNS: &str = "id, customer_id, job_type, payload, state, attempts, max_attempts, run_after, \
     lease_owner, cancel_requested, error, created_at, started_at, finished_at";

fn job(row: &Row) -> Result<Job> {
    let error: Option<serde_json::Value> = row.try_get(10)?;
    Ok(Job {
        id: row.try_get(0)?,
        customer_id: row.try_get::<_, Option<i64>>(1)?.map(CustomerId),
        job_type: row.try_get(2)?,
        payload: row.try_get(3)?,
        state: JobState::parse(row.try_get(4)?)?,
        attempts: row.try_get(5)?,
        max_attempts: row.try_get(6)?,
        run_after: row.try_get(7)?,
        lease_owner: row.try_get(8)?,
        cancel_requested: row.try_get(9)?,
        error: error
            .map(|e| serde_json::from_value(e).map_err(|e| StoreError::Corrupt(format!("job error: {e}"))))
            .transpose()?,
        created_at: row.try_get(11)?,
        started_at: row.try_get(12)?,
        finished_at: row.try_get(13)?,
        activities: Vec::new(),
    })
}

const ACTIVITY_COLUMNS: &str =
    "job_id, activity, position, rows_done, batches_done, checkpoint, finished, active_ms, rows_estimated";

/// A row of [`ACTIVITY_COLUMNS`]: the job it belongs to and its progress.
fn activity_progress(row: &Row) -> Result<(Uuid, ActivityProgress)> {
    Ok((
        row.try_get(0)?,
        ActivityProgress {
            activity: row.try_get(1)?,
            position: row.try_get(2)?,
            rows_done: row.try_get(3)?,
            batches_done: row.try_get(4)?,
            checkpoint: row.try_get(5)?,
            finished: row.try_get(6)?,
            active_ms: row.try_get(7)?,
            rows_estimated: row.try_get(8)?,
        },
    ))
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// Inserts a job and its activity rows in `tx`, returning it with its
/// (fresh) progress; `None` when its `dedupe_key` is already taken, in
/// which case nothing was written. For callers that must create a job
/// atomically with other writes (the scheduler's tick).
pub(crate) async fn insert_job(tx: &Transaction<'_>, new: &NewJob) -> Result<Option<Job>> {
    let inserted = tx
        .query_opt(
            &format!(
                "INSERT INTO jobs (customer_id, job_type, payload, max_attempts, dedupe_key)
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (dedupe_key) DO NOTHING
                 RETURNING {JOB_COLUMNS}"
            ),
            &[&new.customer_id.map(|c| c.0), &new.job_type, &new.payload, &new.max_attempts, &new.dedupe_key],
        )
        .await?;
    let Some(row) = inserted else { return Ok(None) };
    let mut created = job(&row)?;
    for (position, activity) in new.activities.iter().enumerate() {
        let row = tx
            .query_one(
                &format!(
                    "INSERT INTO job_activities (job_id, activity, position) VALUES ($1, $2, $3)
                     RETURNING {ACTIVITY_COLUMNS}"
                ),
                &[&created.id, activity, &(position as i32)],
            )
            .await?;
        created.activities.push(activity_progress(&row)?.1);
    }
    Ok(Some(created))
}

impl Store {
    /// Creates a job with its activity rows. With a `dedupe_key` that
    /// already exists, creates nothing and returns the existing job and
    /// `false`.
    pub async fn create_job(&self, new: &NewJob) -> Result<(Job, bool)> {
        let mut client = self.pool().get().await?;
        let tx = client.transaction().await?;
        let Some(created) = insert_job(&tx, new).await? else {
            drop(tx);
            let key = new.dedupe_key.as_deref().unwrap_or_default();
            let existing = self.job_by_dedupe_key(key).await?;
            return existing
                .map(|j| (j, false))
                .ok_or_else(|| StoreError::Corrupt(format!("job {key} vanished")));
        };
        tx.commit().await?;
        Ok((created, true))
    }

    async fn job_by_dedupe_key(&self, key: &str) -> Result<Option<Job>> {
        let client = self.pool().get().await?;
        let row = client
            .query_opt(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE dedupe_key = $1"), &[&key])
            .await?;
        let Some(row) = row else { return Ok(None) };
        let mut found = job(&row)?;
        found.activities = self.activities(&[found.id]).await?.remove(&found.id).unwrap_or_default();
        Ok(Some(found))
    }

    /// The job, with its progress. `customer`: only if it belongs to that
    /// customer (jobs of all customers belong to none).
    pub async fn get_job(&self, id: Uuid, customer: Option<CustomerId>) -> Result<Option<Job>> {
        let client = self.pool().get().await?;
        let row = client
            .query_opt(
                &format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1 AND ($2::bigint IS NULL OR customer_id = $2)"),
                &[&id, &customer.map(|c| c.0)],
            )
            .await?;
        let Some(row) = row else { return Ok(None) };
        let mut found = job(&row)?;
        found.activities = self.activities(&[id]).await?.remove(&id).unwrap_or_default();
        Ok(Some(found))
    }

    /// Jobs newest first, after the `(created_at, id)` cursor.
    pub async fn list_jobs(
        &self,
        filter: &JobFilter,
        after: Option<(DateTime<Utc>, Uuid)>,
        limit: usize,
    ) -> Result<Vec<Job>> {
        let client = self.pool().get().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {JOB_COLUMNS} FROM jobs
                     WHERE ($1::text IS NULL OR state = $1)
                       AND ($2::smallint IS NULL OR job_type = $2)
                       AND ($3::bigint IS NULL OR customer_id = $3)
                       AND ($4::timestamptz IS NULL OR (created_at, id) < ($4, $5))
                     ORDER BY created_at DESC, id DESC LIMIT $6"
                ),
                &[
                    &filter.state.map(JobState::as_str),
                    &filter.job_type,
                    &filter.customer_id.map(|c| c.0),
                    &after.map(|a| a.0),
                    &after.map_or(Uuid::nil(), |a| a.1),
                    &(limit as i64),
                ],
            )
            .await?;
        let mut jobs = rows.iter().map(job).collect::<Result<Vec<_>>>()?;
        let ids: Vec<Uuid> = jobs.iter().map(|j| j.id).collect();
        let mut activities = self.activities(&ids).await?;
        for j in &mut jobs {
            j.activities = activities.remove(&j.id).unwrap_or_default();
        }
        Ok(jobs)
    }

    async fn activities(
        &self,
        ids: &[Uuid],
    ) -> Result<std::collections::HashMap<Uuid, Vec<ActivityProgress>>> {
        let client = self.pool().get().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {ACTIVITY_COLUMNS} FROM job_activities WHERE job_id = ANY($1) ORDER BY job_id, position"
                ),
                &[&ids],
            )
            .await?;
        let mut by_job: std::collections::HashMap<Uuid, Vec<ActivityProgress>> =
            std::collections::HashMap::new();
        for row in rows {
            let (job_id, progress) = activity_progress(&row)?;
            by_job.entry(job_id).or_default().push(progress);
        }
        Ok(by_job)
    }

    /// Asks a job to stop: a queued job is cancelled at once, a running one
    /// at its next batch (its worker sees the flag). Finished jobs are left
    /// as they are. Returns the job as it is now.
    pub async fn request_cancel(&self, id: Uuid, customer: Option<CustomerId>) -> Result<Option<Job>> {
        let client = self.pool().get().await?;
        client
            .execute(
                "UPDATE jobs SET
                     state = CASE WHEN state = 'queued' THEN 'cancelled' ELSE state END,
                     finished_at = CASE WHEN state = 'queued' THEN now() ELSE finished_at END,
                     cancel_requested = true, updated_at = now()
                 WHERE id = $1 AND ($2::bigint IS NULL OR customer_id = $2) AND state IN ('queued', 'running')",
                &[&id, &customer.map(|c| c.0)],
            )
            .await?;
        self.get_job(id, customer).await
    }

    /// Claims the next runnable job of one of `job_types`: queued and due, or
    /// running with an expired lease (its worker died). Raises `attempts`,
    /// which becomes this attempt's fencing token. Jobs whose lease expired
    /// with no attempts left are failed first.
    pub async fn claim_job(&self, worker: &str, lease: Duration, job_types: &[i16]) -> Result<Option<Claim>> {
        let client = self.pool().get().await?;
        // Jobs whose worker died and that cannot run again: a cancel asked
        // for, or no attempts left.
        client
            .execute(
                "UPDATE jobs SET finished_at = now(), updated_at = now(), lease_owner = NULL,
                     state = CASE WHEN cancel_requested THEN 'cancelled' ELSE 'failed' END,
                     error = CASE WHEN cancel_requested THEN error ELSE jsonb_build_object(
                         'code', 'lease_expired', 'retryable', false, 'details', '{}'::jsonb,
                         'message', 'the worker of the last attempt stopped heartbeating, and no attempts are left') END
                 WHERE state = 'running' AND lease_expires_at < now()
                   AND (cancel_requested OR attempts >= max_attempts)",
                &[],
            )
            .await?;
        let row = client
            .query_opt(
                &format!(
                    "UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_owner = $1,
                         lease_expires_at = now() + make_interval(secs => $2),
                         started_at = coalesce(started_at, now()), updated_at = now()
                     WHERE id = (
                         SELECT id FROM jobs
                         WHERE job_type = ANY($3) AND attempts < max_attempts AND NOT cancel_requested
                           AND ((state = 'queued' AND run_after <= now())
                                OR (state = 'running' AND lease_expires_at < now()))
                         ORDER BY run_after, created_at LIMIT 1
                         FOR UPDATE SKIP LOCKED)
                     RETURNING {JOB_COLUMNS}"
                ),
                &[&worker, &lease.as_secs_f64(), &job_types],
            )
            .await?;
        let Some(row) = row else { return Ok(None) };
        let mut claimed = job(&row)?;
        claimed.activities = self.activities(&[claimed.id]).await?.remove(&claimed.id).unwrap_or_default();
        Ok(Some(Claim { fence: claimed.attempts, job: claimed }))
    }

    /// Extends the lease of attempt `fence`, unless it was lost.
    pub async fn heartbeat(&self, id: Uuid, fence: i32, lease: Duration) -> Result<Lease> {
        let client = self.pool().get().await?;
        let row = client
            .query_opt(
                "UPDATE jobs SET lease_expires_at = now() + make_interval(secs => $3), updated_at = now()
                 WHERE id = $1 AND attempts = $2 AND state = 'running'
                 RETURNING cancel_requested",
                &[&id, &fence, &lease.as_secs_f64()],
            )
            .await?;
        Ok(match row {
            Some(row) => Lease::Held { cancel_requested: row.try_get(0)? },
            None => Lease::Lost,
        })
    }

    /// Records a batch of progress (and the checkpoint to resume from) for
    /// attempt `fence`, in one statement that checks the fence. `Lost`
    /// when the attempt no longer holds the job: nothing was written.
    pub async fn record_progress(&self, id: Uuid, fence: i32, update: &ProgressUpdate<'_>) -> Result<Lease> {
        let client = self.pool().get().await?;
        let row = client
            .query_opt(
                "UPDATE job_activities a SET
                     rows_done = a.rows_done + $4, batches_done = a.batches_done + $5,
                     checkpoint = coalesce($6, a.checkpoint), finished = a.finished OR $7,
                     active_ms = a.active_ms + $8, updated_at = now()
                 FROM jobs j
                 WHERE a.job_id = j.id AND a.activity = $3 AND j.id = $1 AND j.attempts = $2 AND j.state = 'running'
                 RETURNING j.cancel_requested",
                &[
                    &id,
                    &fence,
                    &update.activity,
                    &update.rows,
                    &update.batches,
                    &update.checkpoint,
                    &update.finished,
                    &millis(update.active),
                ],
            )
            .await?;
        Ok(match row {
            Some(row) => Lease::Held { cancel_requested: row.try_get(0)? },
            None => Lease::Lost,
        })
    }

    /// Records how many rows `activity` expects to copy, for attempt `fence`.
    pub async fn record_estimate(&self, id: Uuid, fence: i32, activity: &str, rows: i64) -> Result<Lease> {
        let client = self.pool().get().await?;
        let row = client
            .query_opt(
                "UPDATE job_activities a SET rows_estimated = $4, updated_at = now()
                 FROM jobs j
                 WHERE a.job_id = j.id AND a.activity = $3 AND j.id = $1 AND j.attempts = $2 AND j.state = 'running'
                 RETURNING j.cancel_requested",
                &[&id, &fence, &activity, &rows],
            )
            .await?;
        Ok(match row {
            Some(row) => Lease::Held { cancel_requested: row.try_get(0)? },
            None => Lease::Lost,
        })
    }

    /// Ends attempt `fence` in a terminal state (with the error for
    /// `Failed`), or puts the job back in the queue until `retry_at`.
    /// `false` when the attempt had lost the job: nothing was written.
    pub async fn finish_attempt(&self, id: Uuid, fence: i32, outcome: &AttemptOutcome) -> Result<bool> {
        let client = self.pool().get().await?;
        let (state, error, retry_at) = match outcome {
            AttemptOutcome::Succeeded => (JobState::Succeeded, None, None),
            AttemptOutcome::Cancelled => (JobState::Cancelled, None, None),
            AttemptOutcome::Failed(error) => (JobState::Failed, Some(error), None),
            AttemptOutcome::Retry { error, at } => (JobState::Queued, Some(error), Some(*at)),
        };
        let error = error.map(|e| serde_json::to_value(e).expect("a JobError always serialises"));
        let updated = client
            .execute(
                "UPDATE jobs SET state = $3, run_after = coalesce($5, run_after),
                     -- A success clears the error of earlier attempts; other ends keep the last one.
                     error = CASE WHEN $3 = 'succeeded' THEN NULL ELSE coalesce($4, error) END,
                     lease_owner = NULL, lease_expires_at = NULL, updated_at = now(),
                     finished_at = CASE WHEN $3 IN ('succeeded', 'failed', 'cancelled') THEN now() END
                 WHERE id = $1 AND attempts = $2 AND state = 'running'",
                &[&id, &fence, &state.as_str(), &error, &retry_at],
            )
            .await?;
        Ok(updated == 1)
    }
}

/// How an attempt ended.
#[derive(Clone, Debug, PartialEq)]
pub enum AttemptOutcome {
    Succeeded,
    Cancelled,
    Failed(JobError),
    Retry { error: JobError, at: DateTime<Utc> },
}
