//! Jobs as the `JobService` resource: create (with dedupe), read, list,
//! cancel.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use scorekeeper_domain::CustomerId;
use scorekeeper_store::locks::advisory_xact_lock;
use scorekeeper_store::{Result, StoreError};
use tokio_postgres::Transaction;
use uuid::Uuid;

use super::JobStore;
use super::rows::{self, ACTIVITY_COLUMNS, JOB_COLUMNS, PARTITION_COLUMNS};
use crate::job::{ActivityProgress, Job, JobFilter, JobState, NewJob};

/// Inserts a job and its activity rows in `tx`, returning it with its
/// (fresh) progress; `None` when its `dedupe_key` is already taken, or its
/// `active_key` by a queued or running job, in which case nothing was
/// written. For callers that must create a job atomically with other
/// writes (the scheduler's tick).
pub(super) async fn insert_job(tx: &Transaction<'_>, new: &NewJob) -> Result<Option<Job>> {
    let inserted = tx
        .query_opt(
            &format!(
                "INSERT INTO jobs (customer_id, job_type, payload, max_attempts, dedupe_key, active_key)
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING
                 RETURNING {JOB_COLUMNS}"
            ),
            &[
                &new.customer_id.map(|c| c.0),
                &new.job_type,
                &new.payload,
                &new.max_attempts,
                &new.dedupe_key,
                &new.active_key,
            ],
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
    /// already exists, or an `active_key` a queued or running job holds,
    /// creates nothing and returns that job and `false`.
    pub async fn create_job(&self, new: &NewJob) -> Result<(Job, bool)> {
        let created = self.create(new, None).await?;
        Ok(created.expect("no queue limit was asked for"))
    }

    /// [`JobStore::create_job`], unless the job's customer (or, for a job
    /// of all customers, the operators) already has `max_queued` jobs
    /// waiting to run: then `None`, and nothing is written. Exact under
    /// concurrent creates: each customer's are serialised by an advisory
    /// lock held until the insert commits.
    pub async fn create_job_within(&self, new: &NewJob, max_queued: usize) -> Result<Option<(Job, bool)>> {
        self.create(new, Some(max_queued)).await
    }

    async fn create(&self, new: &NewJob, max_queued: Option<usize>) -> Result<Option<(Job, bool)>> {
        // A key's holder may end between the refused insert and the read of
        // it; then the key is free and the insert is tried again.
        for _ in 0..3 {
            let mut client = self.pool().get().await?;
            let tx = client.transaction().await?;
            if let Some(limit) = max_queued {
                let customer = new.customer_id.map(|c| c.0);
                let name = customer.map_or_else(|| "all".to_owned(), |c| c.to_string());
                advisory_xact_lock(&tx, &format!("scorekeeper_jobs_queue:{name}")).await?;
                let queued: i64 = tx
                    .query_one(
                        "SELECT count(*) FROM jobs WHERE customer_id IS NOT DISTINCT FROM $1 AND state = 'queued'",
                        &[&customer],
                    )
                    .await?
                    .try_get(0)?;
                if queued >= i64::try_from(limit).unwrap_or(i64::MAX) {
                    return Ok(None);
                }
            }
            if let Some(created) = insert_job(&tx, new).await? {
                tx.commit().await?;
                return Ok(Some((created, true)));
            }
            drop(tx);
            if let Some(existing) = self.job_holding_a_key(new).await? {
                return Ok(Some((existing, false)));
            }
        }
        Err(StoreError::Corrupt("a job's dedupe or active key was taken but no job holds it".into()))
    }

    /// The job that holds `new`'s `dedupe_key`, or its `active_key` while
    /// queued or running.
    async fn job_holding_a_key(&self, new: &NewJob) -> Result<Option<Job>> {
        let client = self.pool().get().await?;
        let row = client
            .query_opt(
                &format!(
                    "SELECT {JOB_COLUMNS} FROM jobs
                     WHERE dedupe_key = $1 OR (active_key = $2 AND state IN ('queued', 'running'))
                     LIMIT 1"
                ),
                &[&new.dedupe_key, &new.active_key],
            )
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
        let partitions = client
            .query(
                &format!(
                    "SELECT {PARTITION_COLUMNS} FROM job_partitions WHERE job_id = ANY($1) ORDER BY job_id, activity, n"
                ),
                &[&ids],
            )
            .await?;
        for row in partitions {
            let (job_id, partition) = rows::partition_progress(&row)?;
            let activity = by_job
                .get_mut(&job_id)
                .and_then(|activities| activities.iter_mut().find(|a| a.activity == partition.activity));
            if let Some(activity) = activity {
                add_partition(activity, partition);
            }
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

/// Counts `partition`'s work in its activity's progress (the activity's own
/// row holds only its estimate, wall time and whether it finished) and
/// lists it there.
fn add_partition(activity: &mut ActivityProgress, partition: crate::job::PartitionProgress) {
    activity.rows_done += partition.rows_done;
    activity.pages_done += partition.pages_done;
    activity.checkpoints_done += partition.checkpoints_done;
    activity.partitions.push(partition);
}
