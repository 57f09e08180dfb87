//! Jobs as the `JobService` resource: create (with dedupe), read, list,
//! cancel.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use scorekeeper_domain::CustomerId;
use scorekeeper_store::{Result, StoreError};
use tokio_postgres::Transaction;
use uuid::Uuid;

use super::JobStore;
use super::rows::{self, ACTIVITY_COLUMNS, JOB_COLUMNS};
use crate::job::{ActivityProgress, Job, JobFilter, JobState, NewJob};

/// Inserts a job and its activity rows in `tx`, returning it with its
/// (fresh) progress; `None` when its `dedupe_key` is already taken, in
/// which case nothing was written. For callers that must create a job
/// atomically with other writes (the scheduler's tick).
pub(super) async fn insert_job(tx: &Transaction<'_>, new: &NewJob) -> Result<Option<Job>> {
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
    let mut created = rows::job(&row)?;
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
        created.activities.push(rows::activity_progress(&row)?.1);
    }
    Ok(Some(created))
}

impl JobStore {
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
        self.with_activities(rows::job(&row)?).await.map(Some)
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
        self.with_activities(rows::job(&row)?).await.map(Some)
    }

    /// Jobs newest first, after the `(created_at, id)` cursor.
    pub async fn list_jobs(
        &self,
        filter: &JobFilter,
        after: Option<(DateTime<Utc>, Uuid)>,
        limit: usize,
    ) -> Result<Vec<Job>> {
        let client = self.pool().get().await?;
        let found = client
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
        let mut jobs = found.iter().map(rows::job).collect::<Result<Vec<_>>>()?;
        let ids: Vec<Uuid> = jobs.iter().map(|j| j.id).collect();
        let mut activities = self.activities(&ids).await?;
        for j in &mut jobs {
            j.activities = activities.remove(&j.id).unwrap_or_default();
        }
        Ok(jobs)
    }

    /// How many jobs match `filter`, of all time.
    pub async fn count_jobs(&self, filter: &JobFilter) -> Result<i64> {
        let client = self.pool().get().await?;
        let row = client
            .query_one(
                "SELECT count(*) AS jobs FROM jobs
                 WHERE ($1::text IS NULL OR state = $1)
                   AND ($2::smallint IS NULL OR job_type = $2)
                   AND ($3::bigint IS NULL OR customer_id = $3)",
                &[&filter.state.map(JobState::as_str), &filter.job_type, &filter.customer_id.map(|c| c.0)],
            )
            .await?;
        Ok(row.try_get("jobs")?)
    }

    /// `job` with its activities' progress read.
    pub(super) async fn with_activities(&self, mut job: Job) -> Result<Job> {
        job.activities = self.activities(&[job.id]).await?.remove(&job.id).unwrap_or_default();
        Ok(job)
    }

    async fn activities(&self, ids: &[Uuid]) -> Result<HashMap<Uuid, Vec<ActivityProgress>>> {
        let client = self.pool().get().await?;
        let found = client
            .query(
                &format!(
                    "SELECT {ACTIVITY_COLUMNS} FROM job_activities WHERE job_id = ANY($1) ORDER BY job_id, position"
                ),
                &[&ids],
            )
            .await?;
        let mut by_job: HashMap<Uuid, Vec<ActivityProgress>> = HashMap::new();
        for row in found {
            let (job_id, progress) = rows::activity_progress(&row)?;
            by_job.entry(job_id).or_default().push(progress);
        }
        Ok(by_job)
    }

    /// Asks a job to stop: a queued job is cancelled at once, a running one
    /// at its next checkpoint (its worker sees the flag). Finished jobs are
    /// left as they are. Returns the job as it is now.
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
}
