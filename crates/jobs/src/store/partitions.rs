//! Partitions of a job's activities: planned by the job's attempt, claimed
//! by any worker on a lease of their own, fenced by their own attempt
//! number. Every write on behalf of a claimed partition checks, in the same
//! statement, that the claim is still the latest and that its job has not
//! ended (a failed or cancelled job stops every partition's writes).

use std::time::Duration;

use scorekeeper_store::Result;
use scorekeeper_store::locks::advisory_xact_lock;
use uuid::Uuid;

use super::rows::{self, PARTITION_COLUMNS};
use super::{JobStore, millis};
use crate::job::{AttemptOutcome, Lease, PartitionClaim, PartitionProgress, PartitionState, ProgressUpdate};

/// One claim at a time across all workers, job claims included: the
/// per-customer limits then hold exactly.
pub(super) const CLAIM_LOCK: &str = "scorekeeper_jobs_claim";

/// A partition's key, for the fenced statements below.
pub struct PartitionKey<'a> {
    pub job: Uuid,
    pub activity: &'a str,
    pub n: i32,
}

impl JobStore {
    /// Splits `activity` of job `id` into `splits` (each a range, as the
    /// handler's JSON, and its estimated rows), for attempt `fence` of the
    /// job; the activity's estimate becomes their sum. Partitions already
    /// planned are kept (a second plan of the same activity changes
    /// nothing). One split inherits the activity's checkpoint, if it has
    /// one. `Lost` when the attempt no longer holds the job.
    pub async fn plan_partitions(
        &self,
        id: Uuid,
        fence: i32,
        activity: &str,
        splits: &[(serde_json::Value, i64)],
    ) -> Result<Lease> {
        let mut client = self.pool().get().await?;
        let tx = client.transaction().await?;
        let held = tx
            .query_opt(
                "SELECT cancel_requested FROM jobs WHERE id = $1 AND attempts = $2 AND state = 'running' FOR UPDATE",
                &[&id, &fence],
            )
            .await?;
        let lease = rows::lease(held)?;
        if lease == Lease::Lost {
            return Ok(lease);
        }
        let ranges: Vec<&serde_json::Value> = splits.iter().map(|(range, _)| range).collect();
        let estimates: Vec<i64> = splits.iter().map(|(_, rows)| *rows).collect();
        // A single partition starts from the activity's own checkpoint, if
        // it has one: the activity began in one piece, under a version
        // that did not partition.
        tx.execute(
            "INSERT INTO job_partitions (job_id, activity, n, range, rows_estimated, checkpoint)
             SELECT $1, $2, (t.n - 1)::integer, t.range, t.rows,
                    CASE WHEN cardinality($3::jsonb[]) = 1 THEN a.checkpoint END
             FROM unnest($3::jsonb[], $4::bigint[]) WITH ORDINALITY AS t(range, rows, n)
             LEFT JOIN job_activities a ON a.job_id = $1 AND a.activity = $2
             ON CONFLICT DO NOTHING",
            &[&id, &activity, &ranges, &estimates],
        )
        .await?;
        tx.execute(
            "UPDATE job_activities SET updated_at = now(), rows_estimated =
                 (SELECT coalesce(sum(rows_estimated), 0) FROM job_partitions WHERE job_id = $1 AND activity = $2)
             WHERE job_id = $1 AND activity = $2",
            &[&id, &activity],
        )
        .await?;
        tx.commit().await?;
        Ok(lease)
    }

    /// Claims a partition of a job of one of `job_types` (only of job
    /// `only_job` when given: a job's own attempt working on its
    /// partitions): queued and due, or running with an expired lease (its
    /// worker died), of a job neither ended nor being cancelled. Raises its
    /// `attempts`, this claim's fencing token. Partitions whose lease
    /// expired with no attempts left are failed first; claims that ended in
    /// a retryable failure (`waits`) do not count against the attempts.
    ///
    /// Fair between customers like [`JobStore::claim_job`]: the customer
    /// with the fewest partitions running goes first, then the one served
    /// longest ago; none of a customer already running
    /// `max_per_customer` partitions is claimed.
    pub async fn claim_partition(
        &self,
        worker: &str,
        lease: Duration,
        job_types: &[i16],
        max_per_customer: usize,
        only_job: Option<Uuid>,
    ) -> Result<Option<PartitionClaim>> {
        let mut client = self.pool().get().await?;
        client
            .execute(
                "UPDATE job_partitions p SET state = 'failed', finished_at = now(), updated_at = now(),
                     lease_owner = NULL, error = jsonb_build_object(
                         'code', 'lease_expired', 'retryable', false, 'details', '{}'::jsonb,
                         'message', 'the worker of the partition''s last attempt stopped heartbeating, and no attempts are left')
                 FROM jobs j
                 WHERE j.id = p.job_id AND p.state = 'running' AND p.lease_expires_at < now()
                   AND p.attempts - p.waits >= j.max_attempts",
                &[],
            )
            .await?;
        let max_running = i64::try_from(max_per_customer).unwrap_or(i64::MAX);
        let tx = client.transaction().await?;
        advisory_xact_lock(&tx, CLAIM_LOCK).await?;
        let row = tx
            .query_opt(
                &format!(
                    "WITH running AS (
                         SELECT j.customer_id, count(*) AS partitions
                         FROM job_partitions p JOIN jobs j ON j.id = p.job_id
                         WHERE p.state = 'running' AND p.lease_expires_at >= now()
                         GROUP BY j.customer_id),
                     claimed AS (
                         UPDATE job_partitions p SET state = 'running', attempts = p.attempts + 1,
                             lease_owner = $1, lease_expires_at = now() + make_interval(secs => $2),
                             started_at = coalesce(p.started_at, now()), updated_at = now()
                         WHERE (p.job_id, p.activity, p.n) = (
                             SELECT q.job_id, q.activity, q.n FROM job_partitions q
                             JOIN jobs j ON j.id = q.job_id
                             LEFT JOIN running r ON r.customer_id IS NOT DISTINCT FROM j.customer_id
                             LEFT JOIN job_turns t ON t.customer_key = coalesce(j.customer_id, 0)
                             WHERE q.state IN ('queued', 'running')
                               AND j.job_type = ANY($3) AND j.state IN ('queued', 'running')
                               AND NOT j.cancel_requested AND q.attempts - q.waits < j.max_attempts
                               AND ($5::uuid IS NULL OR q.job_id = $5)
                               AND ((q.state = 'queued' AND q.run_after <= now())
                                    OR (q.state = 'running' AND q.lease_expires_at < now()))
                               AND coalesce(r.partitions, 0) < $4
                             ORDER BY coalesce(r.partitions, 0), t.last_claimed_at NULLS FIRST,
                                      j.created_at, q.activity, q.n
                             LIMIT 1
                             FOR UPDATE OF q SKIP LOCKED)
                         RETURNING p.*),
                     turn AS (
                         INSERT INTO job_turns (customer_key, last_claimed_at)
                         SELECT coalesce(j.customer_id, 0), clock_timestamp() FROM claimed c JOIN jobs j ON j.id = c.job_id
                         ON CONFLICT (customer_key) DO UPDATE SET last_claimed_at = excluded.last_claimed_at)
                     SELECT {PARTITION_COLUMNS} FROM claimed"
                ),
                &[&worker, &lease.as_secs_f64(), &job_types, &max_running, &only_job],
            )
            .await?;
        tx.commit().await?;
        let Some(row) = row else { return Ok(None) };
        let (job_id, partition) = rows::partition_progress(&row)?;
        let Some(job) = self.get_job(job_id, None).await? else {
            return Ok(None);
        };
        Ok(Some(PartitionClaim { job, fence: partition.attempts, partition }))
    }

    /// The partitions of `activity` of job `id`, in order.
    pub async fn partitions_of(&self, id: Uuid, activity: &str) -> Result<Vec<PartitionProgress>> {
        let client = self.pool().get().await?;
        let found = client
            .query(
                &format!("SELECT {PARTITION_COLUMNS} FROM job_partitions WHERE job_id = $1 AND activity = $2 ORDER BY n"),
                &[&id, &activity],
            )
            .await?;
        found.iter().map(|row| Ok(rows::partition_progress(row)?.1)).collect()
    }

    /// Extends the lease of claim `fence` of a partition, unless it was
    /// lost or its job ended.
    pub async fn heartbeat_partition(
        &self,
        key: &PartitionKey<'_>,
        fence: i32,
        lease: Duration,
    ) -> Result<Lease> {
        let client = self.pool().get().await?;
        let row = client
            .query_opt(
                "UPDATE job_partitions p SET lease_expires_at = now() + make_interval(secs => $5), updated_at = now()
                 FROM jobs j
                 WHERE p.job_id = $1 AND p.activity = $2 AND p.n = $3 AND p.attempts = $4 AND p.state = 'running'
                   AND j.id = p.job_id AND j.state IN ('queued', 'running')
                 RETURNING j.cancel_requested",
                &[&key.job, &key.activity, &key.n, &fence, &lease.as_secs_f64()],
            )
            .await?;
        rows::lease(row)
    }

    /// [`JobStore::record_progress`] for claim `fence` of a partition.
    pub async fn record_partition_progress(
        &self,
        key: &PartitionKey<'_>,
        fence: i32,
        update: &ProgressUpdate<'_>,
    ) -> Result<Lease> {
        let client = self.pool().get().await?;
        let row = client
            .query_opt(
                "UPDATE job_partitions p SET
                     rows_done = p.rows_done + $5, pages_done = p.pages_done + $6,
                     checkpoints_done = p.checkpoints_done + CASE WHEN $7::jsonb IS NULL THEN 0 ELSE 1 END,
                     checkpoint = coalesce($7, p.checkpoint), active_ms = p.active_ms + $8, updated_at = now()
                 FROM jobs j
                 WHERE p.job_id = $1 AND p.activity = $2 AND p.n = $3 AND p.attempts = $4 AND p.state = 'running'
                   AND j.id = p.job_id AND j.state IN ('queued', 'running')
                 RETURNING j.cancel_requested",
                &[
                    &key.job,
                    &key.activity,
                    &key.n,
                    &fence,
                    &update.rows,
                    &update.pages,
                    &update.checkpoint,
                    &millis(update.active),
                ],
            )
            .await?;
        rows::lease(row)
    }

    /// Ends claim `fence` of a partition: succeeded, failed for good, put
    /// back for a retry at its time (one more wait: it spends no attempt),
    /// or (cancelled) put back unfinished.
    /// `false` when the claim had lost the partition: nothing was written.
    pub async fn finish_partition(
        &self,
        key: &PartitionKey<'_>,
        fence: i32,
        outcome: &AttemptOutcome,
    ) -> Result<bool> {
        let client = self.pool().get().await?;
        let (state, error, retry_at) = match outcome {
            AttemptOutcome::Succeeded => (PartitionState::Succeeded, None, None),
            AttemptOutcome::Cancelled => (PartitionState::Queued, None, None),
            AttemptOutcome::Failed(error) => (PartitionState::Failed, Some(error), None),
            AttemptOutcome::Retry { error, at } => (PartitionState::Queued, Some(error), Some(*at)),
        };
        let error = error.map(|e| serde_json::to_value(e).expect("a JobError always serialises"));
        // A partition's failure is also the job's last error, so GetJob
        // shows a job that is retrying part of its work (the job's success
        // clears it).
        let updated = client
            .query_opt(
                "WITH ended AS (
                     UPDATE job_partitions SET state = $5, run_after = coalesce($7, run_after),
                         waits = waits + CASE WHEN $7::timestamptz IS NULL THEN 0 ELSE 1 END,
                         error = CASE WHEN $5 = 'succeeded' THEN NULL ELSE coalesce($6, error) END,
                         lease_expires_at = NULL, updated_at = now(),
                         finished_at = CASE WHEN $5 IN ('succeeded', 'failed') THEN now() END
                     WHERE job_id = $1 AND activity = $2 AND n = $3 AND attempts = $4 AND state = 'running'
                     RETURNING job_id),
                 noted AS (
                     UPDATE jobs SET error = $6, updated_at = now()
                     WHERE $6::jsonb IS NOT NULL AND id IN (SELECT job_id FROM ended)
                       AND state IN ('queued', 'running'))
                 SELECT 1 FROM ended",
                &[&key.job, &key.activity, &key.n, &fence, &state.as_str(), &error, &retry_at],
            )
            .await?;
        Ok(updated.is_some())
    }
}
